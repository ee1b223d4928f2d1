import { and, eq, sql } from 'drizzle-orm'
import { experiments, verifyExchange } from '../db/schema.ts'
import type { Writer } from '../db/open.ts'
import { prepared } from '../db/prepared.ts'
import { verifyCredit } from '../scheduler/index.ts'

/**
 * Who verified whose candidates (the verify_exchange table), and what that leaves each contributor
 * free to take: the scheduler leaves another's verifications to others once a contributor has run
 * more of them than its credit (scheduler/next-unit.ts, `verifyCredit`), and the verifier draw
 * prefers contributors in credit. Read at a lease only when verifications wait; written once per
 * verification run that measured something (a crash or a refused run earns nothing).
 */
const p = sql.placeholder
const q = prepared(db => ({
  record: db.insert(verifyExchange).values({ campaign: p('campaign'), verifier: p('verifier'), author: p('author'), runs: 1 })
    .onConflictDoUpdate({ target: [verifyExchange.campaign, verifyExchange.verifier, verifyExchange.author], set: { runs: sql`${verifyExchange.runs} + 1` } }).prepare(),
  authorOf: db.select({ c: experiments.contributorId }).from(experiments).where(eq(experiments.id, p('id'))).prepare(),
  // Two reads, each on its own index, rather than one with an OR that SQLite may answer by reading the campaign's rows.
  byVerifier: db.select({ other: verifyExchange.author, runs: verifyExchange.runs }).from(verifyExchange)
    .where(and(eq(verifyExchange.campaign, p('campaign')), eq(verifyExchange.verifier, p('c')))).prepare(),
  byAuthor: db.select({ other: verifyExchange.verifier, runs: verifyExchange.runs }).from(verifyExchange)
    .where(and(eq(verifyExchange.campaign, p('campaign')), eq(verifyExchange.author, p('c')))).prepare(),
}))

/** A verification of `candidate` measured by a worker of `verifier` (a contributor's runs of its own candidates are not counted). */
export function recordVerification(tx: Writer, campaign: string, verifier: string, candidate: string | null): void {
  const author = candidate ? q(tx).authorOf.get({ id: candidate })?.c : undefined
  if (author && author !== verifier) q(tx).record.run({ campaign, verifier, author })
}

/** What `contributor` verified for each other contributor (`gave`) and each verified for it (`got`). */
function exchangeOf(tx: Writer, campaign: string, contributor: string): { gave: Map<string, number>; got: Map<string, number> } {
  const map = (rows: { other: string; runs: number }[]) => new Map(rows.map(r => [r.other, r.runs]))
  return { gave: map(q(tx).byVerifier.all({ campaign, c: contributor })), got: map(q(tx).byAuthor.all({ campaign, c: contributor })) }
}

/** The scheduler's `outOfCredit` for a worker of `contributor`: those whose candidates it verified beyond its credit. */
export function outOfCredit(tx: Writer, campaign: string, contributor: string): string[] {
  const { gave, got } = exchangeOf(tx, campaign, contributor)
  return [...gave].filter(([author, runs]) => verifyCredit(runs, got.get(author) ?? 0) <= 0).map(([author]) => author)
}

/** For the verifier draw: whether a worker of `verifier` is still in credit with `author` (reads once per author). */
export function creditCheck(tx: Writer, campaign: string): (verifier: string, author: string) => boolean {
  const byAuthor = new Map<string, ReturnType<typeof exchangeOf>>()
  return (verifier, author) => {
    let ex = byAuthor.get(author)
    if (!ex) byAuthor.set(author, (ex = exchangeOf(tx, campaign, author)))
    // The verifier gave the author what the author got from it, and got what the author gave.
    return verifyCredit(ex.got.get(verifier) ?? 0, ex.gave.get(verifier) ?? 0) > 0
  }
}

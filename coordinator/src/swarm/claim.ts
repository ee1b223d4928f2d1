import { and, eq, inArray, ne, sql } from 'drizzle-orm'
import { z } from 'zod'
import { CANDIDATE_KINDS, PlainLine } from '@autoresearch-grid/shared'
import type { Ctx } from '../context.ts'
import { experiments, unitContext, workUnits } from '../db/schema.ts'
import { limitInText, prepared } from '../db/prepared.ts'
import type { Writer } from '../db/open.ts'
import { UserError } from '../errors.ts'
import type { Worker } from '../workers/registry.ts'
import { forgetViews } from './read.ts'

/**
 * Claims: before it trains, a worker says which candidate its agent chose for a unit (the source
 * hash, description and constants changed). The coordinator answers, in one transaction, whether
 * that exact code was already measured on the same parent or is being trained there by another
 * unit right now; if so the worker asks its agent for something else. Two workers that picked the
 * identical edit within seconds, or one worker whose pipelined units both drew the same mutation,
 * each trained it: the tried-on-parent list only knows what was reported.
 */

export const Claim = z.object({
  workerId: z.string().max(64),
  unitId: z.string().max(64),
  leaseToken: z.string().max(64),
  sourceHash: z.string().regex(/^[0-9a-f]{64}$/),
  // Read by the next worker that claims the same code, and by every agent through the swarm's view.
  description: PlainLine(0, 300),
  changes: z.array(PlainLine(0, 120)).max(8).default([]),
  agent: PlainLine(0, 80),
})
export type Claim = z.infer<typeof Claim>

export interface ClaimReply {
  /** The experiment (or unit in flight) that already has this exact candidate on this parent. */
  duplicateOf: { id: string; description: string; status: string; valBpb: number | null } | null
}

const p = sql.placeholder

/**
 * A candidate of this exact code already measured on the parent, found through `experiments_source`.
 * The unary `+` keeps SQLite's planner off `experiments_parent`, which it prefers for its two equal
 * columns and which visits every experiment tried on the parent (as units/report.ts sameOnParentQuery;
 * test/db/indexes.test.ts checks the plan).
 */
export const measuredOnParentQuery = (db: Writer) => db.select({ id: experiments.id, description: experiments.description, status: experiments.status, valBpb: experiments.valBpb })
  .from(experiments).where(and(eq(experiments.sourceHash, p('hash')), eq(sql`+${experiments.campaign}`, p('campaign')), eq(sql`+${experiments.parentCommit}`, p('parent')),
    inArray(experiments.kind, [...CANDIDATE_KINDS]))).limit(limitInText(1))

const q = prepared(db => ({
  unit: db.select().from(workUnits).where(eq(workUnits.id, p('id'))).prepare(),
  measured: measuredOnParentQuery(db).prepare(),
  claimed: db.select({ id: unitContext.unitId, description: unitContext.claimDescription }).from(unitContext).innerJoin(workUnits, eq(workUnits.id, unitContext.unitId))
    .where(and(eq(unitContext.campaign, p('campaign')), eq(unitContext.parentCommit, p('parent')), eq(unitContext.claimHash, p('hash')), ne(unitContext.unitId, p('unit')),
      inArray(workUnits.state, ['leased', 'done']))).limit(limitInText(1)).prepare(),
  version: db.select({ version: unitContext.programVersion }).from(unitContext).where(eq(unitContext.unitId, p('unit'))).prepare(),
  record: db.insert(unitContext).values({ unitId: p('unit'), campaign: p('campaign'), parentCommit: p('parent'), programVersion: p('version') })
    .onConflictDoUpdate({ target: unitContext.unitId, set: { programVersion: sql`excluded.program_version`, claimHash: null, claimDescription: null, claimChanges: null, claimedAt: null } }).prepare(),
}))

/**
 * Notes the program version a unit is handed out under (each lease: a re-leased unit starts
 * afresh). Inside the lease's own transaction (units/assign.ts leaseNextUnit): a batch of its own
 * (db/tick-batch.ts) made every next unit wait one more turn of the event loop, tens of ms at the
 * tail under load (docs/PERFORMANCE.md, "Ninth pass"), and a commit of its own cost more than the
 * rest of handing out the unit.
 */
export function recordUnitContext(tx: Writer, unit: { id: string; campaign: string; parentCommit: string }, programVersion: string | null): void {
  q(tx).record.run({ unit: unit.id, campaign: unit.campaign, parent: unit.parentCommit, version: programVersion })
}

/** The program version a unit was handed out under (recordUnitContext); null when it had none. */
export function unitProgramVersion(ctx: Pick<Ctx, 'db'>, unitId: string): string | null {
  return q(ctx.db).version.get({ unit: unitId })?.version ?? null
}

export function claimCandidate(ctx: Ctx, worker: Worker, claim: Claim): ClaimReply {
  const reply = ctx.db.transaction(tx => {
    const unit = q(tx).unit.get({ id: claim.unitId })
    if (!unit || unit.workerId !== worker.id || unit.leaseToken !== claim.leaseToken || unit.state !== 'leased')
      throw new UserError(`unit ${claim.unitId} is not leased to this worker under that lease token: nothing to claim`, 'stale')
    const at = { campaign: unit.campaign, parent: unit.parentCommit, hash: claim.sourceHash }
    const measured = q(tx).measured.get(at)
    if (measured) return { duplicateOf: measured }
    const claimed = q(tx).claimed.get({ ...at, unit: unit.id })
    if (claimed) return { duplicateOf: { id: claimed.id, description: claimed.description ?? '', status: 'in-flight', valBpb: null } }
    tx.insert(unitContext).values({ unitId: unit.id, campaign: unit.campaign, parentCommit: unit.parentCommit, claimHash: claim.sourceHash, claimDescription: claim.description,
      claimChanges: claim.changes, agent: claim.agent, claimedAt: ctx.now() })
      .onConflictDoUpdate({ target: unitContext.unitId, set: { claimHash: claim.sourceHash, claimDescription: claim.description, claimChanges: claim.changes, agent: claim.agent, claimedAt: ctx.now() } }).run()
    return { duplicateOf: null }
  })
  if (!reply.duplicateOf) {
    const unit = q(ctx.db).unit.get({ id: claim.unitId })
    if (unit) forgetViews(ctx, unit.campaign)
  }
  return reply
}

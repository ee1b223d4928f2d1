import { and, eq, gt, inArray, isNull, or, sql } from 'drizzle-orm'
import { contributors, experiments } from '../db/schema.ts'
import type { Writer } from '../db/open.ts'
import { prepared } from '../db/prepared.ts'

/**
 * Contributors whose candidates nobody should spend runs verifying until the maintainer looks
 * (issue 15; the rule the simulation always played, now in production and per contributor, not
 * per worker: a second worker or token of the same person is the same suspect). A contributor is a
 * suspect, since the maintainer last cleared it (admin.clearSuspect), after SUSPECT_AFTER claims
 * above the cap that other contributors did not reproduce, or after CONTRADICTED_AFTER claims
 * below it that other contributors' runs contradicted (decide.ts, `claim-contradicted`) when those
 * are at least half of its candidates judged on verifications: a forger under the cap otherwise
 * kept a third of the honest workers busy, and each forged candidate was one more chance for honest
 * noise to carry it. Not a ban: its workers keep running
 * baselines and verifications of others, and its candidates wait.
 */
export const SUSPECT_AFTER = 2
export const CONTRADICTED_AFTER = 3

const q = prepared(db => ({
  suspects: db.select({ c: experiments.contributorId, reason: experiments.reason, n: sql<number>`count(*)` }).from(experiments)
    .leftJoin(contributors, eq(contributors.id, experiments.contributorId))
    .where(and(eq(experiments.campaign, sql.placeholder('campaign')),
      inArray(experiments.reason, ['unreproduced-improvement', 'claim-contradicted', 'not-confirmed', 'not-reproduced']),
      or(isNull(contributors.suspectClearedAt), gt(experiments.createdAt, contributors.suspectClearedAt))))
    .groupBy(experiments.contributorId, experiments.reason).prepare(),
}))

export function suspectContributors(tx: Writer, campaign: string): string[] {
  const counts = new Map<string, Record<string, number>>()
  for (const r of q(tx).suspects.all({ campaign })) counts.set(r.c, { ...counts.get(r.c), [r.reason ?? '']: r.n })
  return [...counts].filter(([, n]) => {
    const contradicted = n['claim-contradicted'] ?? 0
    const judged = contradicted + (n['not-confirmed'] ?? 0) + (n['not-reproduced'] ?? 0)
    return (n['unreproduced-improvement'] ?? 0) >= SUSPECT_AFTER || (contradicted >= CONTRADICTED_AFTER && contradicted * 2 >= judged)
  }).map(([c]) => c).sort()
}

import { and, eq, gt, isNull, or, sql } from 'drizzle-orm'
import { contributors, experiments } from '../db/schema.ts'
import type { Writer } from '../events/log.ts'
import { prepared } from '../db/prepared.ts'

/**
 * Contributors whose candidates nobody should spend runs verifying until the maintainer looks
 * (issue 15; the rule the simulation always played, now in production and per contributor, not
 * per worker: a second worker or token of the same person is the same suspect). A contributor is a
 * suspect after SUSPECT_AFTER claims above the cap that other contributors did not reproduce,
 * since the maintainer last cleared it (admin.clearSuspect). Not a ban: its workers keep running
 * baselines and verifications of others, and its candidates wait.
 */
export const SUSPECT_AFTER = 2

const q = prepared(db => ({
  suspects: db.select({ c: experiments.contributorId, n: sql<number>`count(*)` }).from(experiments)
    .leftJoin(contributors, eq(contributors.id, experiments.contributorId))
    .where(and(eq(experiments.campaign, sql.placeholder('campaign')), eq(experiments.reason, 'unreproduced-improvement'),
      or(isNull(contributors.suspectClearedAt), gt(experiments.createdAt, contributors.suspectClearedAt))))
    .groupBy(experiments.contributorId).prepare(),
}))

export function suspectContributors(tx: Writer, campaign: string): string[] {
  return q(tx).suspects.all({ campaign }).filter(r => r.n >= SUSPECT_AFTER).map(r => r.c)
}

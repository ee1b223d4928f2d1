import { and, eq, gte, inArray, sql } from 'drizzle-orm'
import type { Ctx } from '../context.ts'
import { hypotheses } from '../db/schema.ts'

/**
 * How many more hypotheses one contributor's agents may add to a campaign now (issue 15: 30 calls
 * of `worker.propose` stored 90 hypotheses, and the queue is what every worker explores next). Two
 * limits, per contributor, not per worker (more workers or tokens are the same person): open ones
 * (open, in progress) at most `maxOpenProposalsPerContributor`, and no more than that many stored
 * within an hour whatever became of them (duplicates are rows too).
 */
export const DEFAULT_MAX_OPEN_PROPOSALS = 30
const HOUR_MS = 60 * 60 * 1000

export function proposalRoom(ctx: Pick<Ctx, 'db' | 'now' | 'settings'>, campaign: string, contributorId: string): number {
  const max = ctx.settings.maxOpenProposalsPerContributor ?? DEFAULT_MAX_OPEN_PROPOSALS
  const mine = and(eq(hypotheses.campaign, campaign), eq(hypotheses.contributorId, contributorId))
  const open = ctx.db.select({ n: sql<number>`count(*)` }).from(hypotheses).where(and(mine, inArray(hypotheses.status, ['open', 'in-progress']))).get()!.n
  const recent = ctx.db.select({ n: sql<number>`count(*)` }).from(hypotheses).where(and(mine, gte(hypotheses.createdAt, ctx.now() - HOUR_MS))).get()!.n
  return Math.max(0, Math.min(max - open, max - recent))
}

import { and, eq, inArray } from 'drizzle-orm'
import { CANDIDATE_KINDS } from '@autoresearch-grid/shared'
import type { Ctx } from '../context.ts'
import { experiments } from '../db/schema.ts'
import { getCampaign } from '../campaigns/campaigns.ts'
import { applyDecision, decideCandidate, type CancelledRun } from './judge.ts'
import { announceCancelled } from './report-outcome.ts'
import { finishMerge, mergeStale, type MergeJob } from './merge.ts'

type Experiment = typeof experiments.$inferSelect

/**
 * Re-decides a campaign's pending candidates on one class after something the ratchet reads
 * changed outside a report: the maintainer approved the class (held candidates are judged now) or
 * cleared a suspect. Merges and stale carries follow as after a report.
 */
export async function redecidePending(ctx: Ctx, campaign: string, hardwareClass: string): Promise<number> {
  const jobs: MergeJob[] = []
  const stale: Experiment[] = []
  const cancelled: CancelledRun[] = []
  const decided = ctx.db.transaction(tx => {
    const c = getCampaign({ db: tx as never }, campaign)
    if (!c) return 0
    const pending = tx.select().from(experiments).where(and(eq(experiments.campaign, campaign), eq(experiments.hardwareClass, hardwareClass),
      eq(experiments.status, 'pending'), inArray(experiments.kind, [...CANDIDATE_KINDS]))).all()
    for (const exp of pending) {
      const applied = applyDecision(tx, c, exp, decideCandidate(tx, c, exp), ctx.now())
      if (applied.merge) jobs.push({ campaign, experiment: { ...exp, status: applied.status }, decision: applied.merge })
      if (applied.status === 'stale') stale.push(exp)
      cancelled.push(...applied.cancelled)
    }
    return pending.length
  })
  announceCancelled(ctx, cancelled)
  for (const job of jobs) await finishMerge(ctx, job)
  for (const exp of stale) await mergeStale(ctx, exp)
  ctx.bus.emit({ type: 'work-available', campaign })
  return decided
}

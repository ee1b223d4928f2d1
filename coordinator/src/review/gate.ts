import { eq } from 'drizzle-orm'
import type { Ctx } from '../context.ts'
import { newId } from '../context.ts'
import { experiments, reviews } from '../db/schema.ts'
import { logEvent } from '../events/log.ts'
import { getCampaign } from '../campaigns/campaigns.ts'
import { awaitingText, effectiveReview, reviewState } from './policy.ts'
import { approvalOf, type Approval, type MergeJob, type ReviewRow } from './rows.ts'

export type { Approval } from './rows.ts'

/**
 * The review gate, the one place where the ratchet's "merge" becomes "request review" (called by
 * units/merge.ts finishMerge). Returns the approval to merge with now: the campaign merges
 * unreviewed (`none`, or an agent-only review without an agent, announced in the audit log), or
 * its review was approved before a crash cut the merge short. Otherwise the candidate becomes
 * `awaiting-review` (its decision text says by whom) and null is returned; the runner
 * (review/runner.ts) or the maintainer's verdict (review/verdicts.ts) carries it on.
 * Called again for the same candidate (crash recovery re-decides `merging` candidates), it reads
 * the review already recorded instead of starting a second one.
 */
export function gateMerge(ctx: Ctx, job: MergeJob): Approval | null {
  const result = ctx.db.transaction(tx => {
    const existing = tx.select().from(reviews).where(eq(reviews.experimentId, job.experiment.id)).get()
    if (existing) return { approval: existing.state === 'approved' ? approvalOf(existing) : null, requested: false }
    const c = getCampaign({ db: tx as never }, job.campaign)!
    const eff = effectiveReview(c.spec.review, ctx.settings.reviewAgent !== null)
    const state = reviewState(eff.mode, [])
    const now = ctx.now()
    const row: ReviewRow = {
      id: newId('r'), campaign: c.name, experimentId: job.experiment.id, requested: eff.requested, mode: eff.mode, warning: eff.warning,
      state: state.kind === 'approved' ? 'approved' : 'pending', decision: job.decision, agentModel: null, agentVerdict: null, agentReason: null,
      agentConcerns: null, agentFailures: 0, agentError: null, agentNextAt: null, agentAt: null, maintainerVerdict: null, maintainerReason: null,
      maintainerAt: null, createdAt: now, decidedAt: state.kind === 'approved' ? now : null,
    }
    tx.insert(reviews).values(row).run()
    if (state.kind === 'approved') {
      // Merging unreviewed is allowed only where the campaign asked for it or the fallback says so, loudly.
      if (eff.warning) logEvent(tx, c.name, 'review-skipped', { experiment: row.experimentId, review: row.id, requested: eff.requested, warning: eff.warning })
      return { approval: approvalOf(row), requested: false }
    }
    tx.update(experiments).set({ status: 'awaiting-review', decision: awaitingText(eff.mode, state.kind === 'waiting' ? state.on : [], job.decision.message) })
      .where(eq(experiments.id, row.experimentId)).run()
    logEvent(tx, c.name, 'review-requested', { experiment: row.experimentId, review: row.id, mode: eff.mode, requested: eff.requested, warning: eff.warning })
    return { approval: null, requested: true }
  })
  if (result.requested) {
    ctx.bus.emit({ type: 'review', campaign: job.campaign, experimentId: job.experiment.id })
    ctx.bus.emit({ type: 'experiment', campaign: job.campaign, experimentId: job.experiment.id, status: 'awaiting-review' })
  }
  return result.approval
}

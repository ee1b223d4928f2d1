import { and, eq } from 'drizzle-orm'
import type { Ctx } from '../context.ts'
import { experiments, hypotheses, reviews } from '../db/schema.ts'
import { logEvent } from '../events/log.ts'
import { getCampaign } from '../campaigns/campaigns.ts'
import { UserError } from '../errors.ts'
import { awaitingText, oneLine, rejectedText, retryDelayMs, reviewState, type Verdict } from './policy.ts'
import { approvalOf, verdictsOf, type MergeDecision, type MergeSteps, type ReviewRow } from './rows.ts'
import type { Concern } from './prompt.ts'
import { crashPoint } from '../faults/crash-point.ts'

/**
 * The transitions of a review after the gate opened it, each one named verb: a verdict (agent or
 * maintainer), a failed agent call, and "the best moved on" (superseded). Each writes the review
 * and its experiment in one transaction; a verdict that completes the review then merges through
 * `steps.commit` (units/merge.ts commitMerge, rows.ts MergeSteps), whose own check sends a candidate whose parent is no longer the best
 * down the stale path.
 *
 *   pending ──verdict──▶ pending (another reviewer still owed)
 *      │  ├──verdict──▶ approved ──▶ experiment merging ──▶ kept (or stale, if the best moved)
 *      │  └──verdict──▶ rejected ──▶ experiment rejected, with who and why
 *      ├──agent failed──▶ pending, agent asked again after a pause (never a verdict)
 *      └──best moved──▶ superseded ──▶ experiment stale ──▶ merged onto the best, reviewed again
 */

export interface VerdictInput extends Verdict {
  concerns?: Concern[]
}

export type VerdictOutcome = 'approved' | 'rejected' | 'waiting'

/** Records one reviewer's verdict on a pending review and acts on what the verdicts add up to. */
export async function recordVerdict(ctx: Ctx, reviewId: string, v: VerdictInput, steps: MergeSteps): Promise<VerdictOutcome> {
  const now = ctx.now()
  const done = ctx.db.transaction(tx => {
    const row = tx.select().from(reviews).where(eq(reviews.id, reviewId)).get()
    if (!row) throw new UserError(`no review "${reviewId}"`, 'not-found')
    if (row.state !== 'pending') throw new UserError(`the review of ${row.experimentId} is already ${row.state}: nothing to decide`, 'conflict')
    const mine = v.reviewer === 'agent'
      ? { agentModel: v.by, agentVerdict: v.verdict, agentReason: v.reason, agentConcerns: v.concerns ?? [], agentAt: now, agentError: null, agentNextAt: null }
      : { maintainerVerdict: v.verdict, maintainerReason: v.reason, maintainerAt: now }
    const updated: ReviewRow = { ...row, ...mine }
    const s = reviewState(row.mode, verdictsOf(updated))
    const state: ReviewRow['state'] = s.kind === 'waiting' ? 'pending' : s.kind
    tx.update(reviews).set({ ...mine, state, decidedAt: state === 'pending' ? null : now }).where(eq(reviews.id, reviewId)).run()
    const decision = row.decision as MergeDecision
    const exp = tx.select().from(experiments).where(eq(experiments.id, row.experimentId)).get()!
    const payload = { experiment: row.experimentId, review: row.id, reviewer: v.reviewer, by: v.by, verdict: v.verdict, reason: oneLine(v.reason, 2000) }
    if (s.kind === 'rejected') {
      tx.update(experiments).set({ status: 'rejected', decision: rejectedText(s.rejection) }).where(eq(experiments.id, exp.id)).run()
      if (exp.hypothesisId) tx.update(hypotheses).set({ status: 'tested' }).where(eq(hypotheses.id, exp.hypothesisId)).run()
      logEvent(tx, row.campaign, 'review-rejected', payload)
    } else if (s.kind === 'approved') {
      // `merging` is what crash recovery finishes (units/merge.ts recoverMerges): the approval is on record first.
      tx.update(experiments).set({ status: 'merging' }).where(eq(experiments.id, exp.id)).run()
      logEvent(tx, row.campaign, 'review-approved', payload)
    } else {
      tx.update(experiments).set({ decision: awaitingText(row.mode, s.on, decision.message) }).where(eq(experiments.id, exp.id)).run()
      logEvent(tx, row.campaign, 'review-verdict', payload)
    }
    return { outcome: (s.kind === 'waiting' ? 'waiting' : s.kind) as VerdictOutcome, row: { ...updated, state }, exp, decision }
  })
  if (done.outcome === 'rejected') steps.closed(ctx, done.exp, 'rejected by its review')
  if (done.outcome === 'approved') {
    crashPoint('review-approved')
    await steps.commit(ctx, { campaign: done.row.campaign, experiment: { ...done.exp, status: 'merging' }, decision: done.decision }, approvalOf(done.row))
  }
  announce(ctx, done.row.campaign, done.row.experimentId)
  return done.outcome
}

/** The maintainer's verdict, by experiment (what the dashboard shows): a reason is required either way. */
export async function maintainerVerdict(ctx: Ctx, experimentId: string, verdict: 'approve' | 'reject', reason: string, steps: MergeSteps): Promise<{ outcome: VerdictOutcome; status: string }> {
  const row = ctx.db.select().from(reviews).where(and(eq(reviews.experimentId, experimentId), eq(reviews.state, 'pending'))).get()
  if (!row) throw new UserError(`experiment "${experimentId}" is not awaiting review`, 'conflict')
  if (!reason.trim()) throw new UserError('a review needs a reason: say why you approve or reject it')
  const outcome = await recordVerdict(ctx, row.id, { reviewer: 'maintainer', by: 'maintainer', verdict, reason: reason.trim() }, steps)
  const status = ctx.db.select({ status: experiments.status }).from(experiments).where(eq(experiments.id, experimentId)).get()!.status
  return { outcome, status }
}

/**
 * A failed agent review (an outage, a refused key, no valid answer): counted, shown, and asked
 * again after a growing pause. The candidate keeps waiting; a failure is never a verdict.
 */
export function recordAgentFailure(ctx: Ctx, reviewId: string, model: string, error: string): void {
  const now = ctx.now()
  const row = ctx.db.transaction(tx => {
    const row = tx.select().from(reviews).where(eq(reviews.id, reviewId)).get()
    if (row?.state !== 'pending') return null
    const failures = row.agentFailures + 1
    const nextAt = now + retryDelayMs(failures, ctx.settings.reviewRetryMs, ctx.settings.reviewRetryMaxMs)
    tx.update(reviews).set({ agentFailures: failures, agentError: oneLine(error, 1000), agentNextAt: nextAt, agentModel: model }).where(eq(reviews.id, reviewId)).run()
    logEvent(tx, row.campaign, 'review-error', { experiment: row.experimentId, review: row.id, model, error: oneLine(error, 1000), failures, retryAt: nextAt })
    return row
  })
  if (row) announce(ctx, row.campaign, row.experimentId)
}

/**
 * Pending reviews of candidates whose parent is no longer the best: reviewing them would approve a
 * merge that cannot happen. They are superseded and go the stale way (three-way merge onto the
 * best, or a rebase unit), whose result the ratchet judges, and the gate reviews, afresh.
 */
export async function supersedeMoved(ctx: Ctx, campaign: string, steps: MergeSteps): Promise<number> {
  const c = getCampaign(ctx, campaign)
  if (!c) return 0
  const moved = ctx.db.select({ review: reviews, exp: experiments }).from(reviews).innerJoin(experiments, eq(experiments.id, reviews.experimentId))
    .where(and(eq(reviews.campaign, campaign), eq(reviews.state, 'pending'))).all().filter(r => r.exp.parentCommit !== c.bestCommit)
  for (const { review, exp } of moved) {
    // Review and experiment change together: a crash before mergeStale leaves a stale candidate
    // without follow-up, which the next start carries on (units/merge.ts recoverMerges).
    const taken = ctx.db.transaction(tx => {
      const changed = tx.update(reviews).set({ state: 'superseded', decidedAt: ctx.now() }).where(and(eq(reviews.id, review.id), eq(reviews.state, 'pending'))).run().changes
      if (!changed) return false
      tx.update(experiments).set({ status: 'stale', decision: 'stale: the best moved on while it awaited review' }).where(eq(experiments.id, exp.id)).run()
      logEvent(tx, campaign, 'review-superseded', { experiment: exp.id, review: review.id, best: c.bestCommit })
      return true
    })
    if (taken) await steps.stale(ctx, { ...exp, status: 'stale' })
    announce(ctx, campaign, exp.id)
  }
  return moved.length
}

/** supersedeMoved for every campaign with a pending review: at start-up (the best may have moved before a crash) and on each runner pass. */
export async function supersedeAll(ctx: Ctx, steps: MergeSteps): Promise<void> {
  const campaigns = new Set(ctx.db.select({ campaign: reviews.campaign }).from(reviews).where(eq(reviews.state, 'pending')).all().map(r => r.campaign))
  for (const name of campaigns) await supersedeMoved(ctx, name, steps)
}

function announce(ctx: Ctx, campaign: string, experimentId: string): void {
  const status = ctx.db.select({ status: experiments.status }).from(experiments).where(eq(experiments.id, experimentId)).get()?.status ?? 'unknown'
  ctx.bus.emit({ type: 'review', campaign, experimentId })
  ctx.bus.emit({ type: 'experiment', campaign, experimentId, status })
}

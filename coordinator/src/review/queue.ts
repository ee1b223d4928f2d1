import { and, desc, eq, ne } from 'drizzle-orm'
import type { Ctx } from '../context.ts'
import { contributors, experiments, reviews, workers } from '../db/schema.ts'
import { getCampaign } from '../campaigns/campaigns.ts'
import { effectiveReview, reviewState } from './policy.ts'
import { verdictsOf, type MergeDecision, type ReviewRow } from './rows.ts'

/** Reads behind the dashboard's review queue: what the maintainer needs to decide, and what was decided. */

/** A review as the page shows it: verdicts so far, who is still owed, and the agent's state. */
export function reviewView(row: ReviewRow) {
  const s = reviewState(row.mode, verdictsOf(row))
  const d = row.decision as MergeDecision
  return {
    id: row.id, experimentId: row.experimentId, state: row.state, mode: row.mode, requested: row.requested, warning: row.warning,
    waitingOn: s.kind === 'waiting' ? s.on : [],
    agent: { model: row.agentModel, verdict: row.agentVerdict, reason: row.agentReason, concerns: row.agentConcerns ?? [], failures: row.agentFailures,
      error: row.agentError, nextAt: row.agentNextAt, at: row.agentAt },
    maintainer: { verdict: row.maintainerVerdict, reason: row.maintainerReason, at: row.maintainerAt },
    evidence: d.evidence, samples: d.samples.map(x => x.valBpb), verifiers: d.verifierIds.length, ratchet: d.message,
    createdAt: row.createdAt, decidedAt: row.decidedAt,
  }
}

/**
 * The campaign's review queue: pending candidates oldest first, with their diff and evidence (a
 * handful at a time: the ratchet lets few through), then the latest decided reviews.
 */
export function reviewQueue(app: Ctx, campaign: string) {
  const c = getCampaign(app, campaign)
  if (!c) return null
  const rows = (state: 'pending' | 'decided') => app.db.select({ review: reviews, exp: experiments, worker: workers.name, contributor: contributors.name })
    .from(reviews).innerJoin(experiments, eq(experiments.id, reviews.experimentId))
    .leftJoin(workers, eq(workers.id, experiments.workerId)).leftJoin(contributors, eq(contributors.id, experiments.contributorId))
    .where(and(eq(reviews.campaign, campaign), state === 'pending' ? eq(reviews.state, 'pending') : ne(reviews.state, 'pending')))
    .orderBy(state === 'pending' ? reviews.createdAt : desc(reviews.createdAt)).limit(state === 'pending' ? 50 : 20).all()
  const item = (r: ReturnType<typeof rows>[number], withDiff: boolean) => ({
    ...reviewView(r.review),
    experiment: {
      id: r.exp.id, description: r.exp.description, decision: r.exp.decision, status: r.exp.status, valBpb: r.exp.valBpb, commit: r.exp.commit,
      parentCommit: r.exp.parentCommit, hardwareClass: r.exp.hardwareClass, worker: r.worker, contributor: r.contributor, diff: withDiff ? r.exp.diff : '',
    },
    parentIsBest: r.exp.parentCommit === c.bestCommit,
  })
  return {
    review: effectiveReview(c.spec.review, app.settings.reviewAgent !== null),
    pending: rows('pending').map(r => item(r, true)),
    decided: rows('decided').map(r => item(r, false)),
  }
}

/** The review of one experiment, if it had one (the experiment detail shows it). */
export function reviewOf(app: Ctx, experimentId: string) {
  const row = app.db.select().from(reviews).where(eq(reviews.experimentId, experimentId)).get()
  return row ? reviewView(row) : null
}

import type { Decision } from '../ratchet/index.ts'
import type { Ctx } from '../context.ts'
import type { experiments, reviews } from '../db/schema.ts'
import { approvedText, approvers, oneLine, reviewState, reviewTrailer, type Verdict } from './policy.ts'

/** A review as stored (db/schema.ts), and the readings of it the gate, the verdicts and the dashboard share. */
export type ReviewRow = typeof reviews.$inferSelect
export type MergeDecision = Extract<Decision, { kind: 'merge' }>
type Experiment = typeof experiments.$inferSelect

/** A candidate the ratchet would merge, as the gate and the merge see it (units/merge.ts). */
export interface MergeJob { campaign: string; experiment: Experiment; decision: MergeDecision }

/**
 * How a review's outcome is carried on: the merge verbs of the work-unit loop (units/merge.ts
 * MERGE_STEPS), handed down by their callers (the coordinator, the admin API) so that review/,
 * which the merge calls through the gate, never imports the layer above it.
 */
export interface MergeSteps {
  /** An approved candidate merges (or goes the stale way, if the best moved meanwhile). */
  commit(ctx: Ctx, job: MergeJob, approval: Approval): Promise<void>
  /** A superseded candidate is merged onto the best, or gets a rebase unit. */
  stale(ctx: Ctx, exp: Experiment): Promise<void>
  /** A candidate its review rejected: verifications of it still running are stopped (they can count for nothing). */
  closed(ctx: Ctx, exp: Experiment, why: string): void
}

/** What a merge records of its review: in the merge row, the commit trailer and the decision text. */
export interface Approval {
  /** "claude-… (agent), maintainer (maintainer)", or "none". */
  reviewer: string
  reason: string
  /** Lines for the merge commit's message. */
  trailer: string
  /** The experiment's decision text once merged; absent: keep the ratchet's. */
  decision?: string
}

/** The verdicts a review holds so far, in the order they count. */
export function verdictsOf(row: ReviewRow): Verdict[] {
  const out: Verdict[] = []
  if (row.agentVerdict) out.push({ reviewer: 'agent', by: row.agentModel ?? 'agent', verdict: row.agentVerdict, reason: row.agentReason ?? '' })
  if (row.maintainerVerdict) out.push({ reviewer: 'maintainer', by: 'maintainer', verdict: row.maintainerVerdict, reason: row.maintainerReason ?? '' })
  return out
}

/** The approval of a review that reads as approved (review `none` approves with nobody). */
export function approvalOf(row: ReviewRow): Approval {
  const s = reviewState(row.mode, verdictsOf(row))
  const approvals = s.kind === 'approved' ? s.approvals : []
  const decision = row.decision as MergeDecision
  return {
    reviewer: approvers(approvals),
    reason: approvals.length ? approvals.map(v => oneLine(v.reason, 2000)).join(' / ') : row.warning ?? `review: ${row.mode}`,
    trailer: reviewTrailer(approvals, row.mode, row.warning),
    decision: approvals.length ? approvedText(decision.message, approvals) : row.warning ? `${decision.message}; merged WITHOUT review: ${row.warning}` : undefined,
  }
}

import type { ReviewMode } from '@autoresearch-grid/shared'

/**
 * The review gate's rules (docs/RATCHET.md, "The review gate"), as pure functions: which mode
 * applies when the agent cannot run, who still has to answer, and what the verdicts so far add
 * up to. The ratchet decides that a candidate is *faster*; this decides whether anyone still has
 * to say that it is *fair* before the branch moves. review/gate.ts and review/verdicts.ts read
 * and write the database around these.
 *
 *   merge decision ──▶ effectiveReview ──none──▶ merge (approval "none", warned if a fallback)
 *                           │
 *                           └─▶ awaiting-review ──▶ verdicts ──▶ reviewState
 *                                                     approved ─▶ merge (the best may have moved: stale path)
 *                                                     rejected ─▶ rejected, with who and why
 *                                                     waiting  ─▶ agent retried later / maintainer's queue
 */

export type Reviewer = 'agent' | 'maintainer'

export interface Verdict {
  reviewer: Reviewer
  /** Who answered: the agent's model id, or "maintainer". */
  by: string
  verdict: 'approve' | 'reject'
  reason: string
}

export interface EffectiveReview {
  /** What the campaign asked for. */
  requested: ReviewMode
  /** What applies: the request, or its fallback when it needs an agent and none is configured. */
  mode: ReviewMode
  /** Shown wherever the fallback matters (dashboard banner, CLI, audit log); null when none applies. */
  warning: string | null
}

export const DEFAULT_REVIEW: ReviewMode = 'agent'

const needsAgent = (mode: ReviewMode) => mode === 'agent' || mode === 'agent+maintainer'

/**
 * The mode a campaign gets on this coordinator. Without an agent a review that asked for the
 * maintainer too still gets the maintainer (a person is the stricter of the two, so nothing is
 * lost but the second opinion); an agent-only review falls back to merging unreviewed, which is
 * what the campaign had before review existed, and is announced, never silent.
 */
export function effectiveReview(requested: ReviewMode | undefined, agentAvailable: boolean): EffectiveReview {
  const mode = requested ?? DEFAULT_REVIEW
  if (!needsAgent(mode) || agentAvailable) return { requested: mode, mode, warning: null }
  if (mode === 'agent+maintainer') {
    return { requested: mode, mode: 'maintainer', warning: 'review asks for an agent, but the coordinator has no ANTHROPIC_API_KEY: only the maintainer reviews candidates' }
  }
  return { requested: mode, mode: 'none', warning: 'review asks for an agent, but the coordinator has no ANTHROPIC_API_KEY: candidates merge WITHOUT review' }
}

/** The reviewers whose approval a mode requires. */
export function requiredReviewers(mode: ReviewMode): Reviewer[] {
  if (mode === 'none') return []
  if (mode === 'agent+maintainer') return ['agent', 'maintainer']
  return [mode]
}

export type ReviewState =
  | { kind: 'approved'; approvals: Verdict[] }
  | { kind: 'rejected'; rejection: Verdict }
  /** `on`: the reviewers whose verdict is still missing. */
  | { kind: 'waiting'; on: Reviewer[] }

/**
 * What the verdicts so far add up to. One rejection rejects, whoever gave it. Approval needs every
 * reviewer the mode requires, with one exception: in `agent` mode the maintainer may stand in for
 * the agent (an agent that keeps failing must not block a campaign forever, and the maintainer's
 * word is the higher one); in `agent+maintainer` both must approve, which is what that mode is for.
 */
export function reviewState(mode: ReviewMode, verdicts: readonly Verdict[]): ReviewState {
  const rejection = verdicts.find(v => v.verdict === 'reject')
  if (rejection) return { kind: 'rejected', rejection }
  const approved = (r: Reviewer) => verdicts.some(v => v.reviewer === r && v.verdict === 'approve')
  if (mode === 'agent' && approved('maintainer')) return { kind: 'approved', approvals: verdicts.filter(v => v.verdict === 'approve') }
  const on = requiredReviewers(mode).filter(r => !approved(r))
  return on.length ? { kind: 'waiting', on } : { kind: 'approved', approvals: verdicts.filter(v => v.verdict === 'approve') }
}

/** Whether the agent still has to be asked: it is required and has not answered. */
export function agentOwed(mode: ReviewMode, verdicts: readonly Verdict[]): boolean {
  const s = reviewState(mode, verdicts)
  return s.kind === 'waiting' && s.on.includes('agent')
}

/**
 * Pause before asking the agent again after a failed review: doubling from `baseMs`, capped at
 * `maxMs`. A failure is an outage or a malformed answer, never a verdict, so it is retried until
 * the agent answers or a maintainer decides.
 */
export function retryDelayMs(failures: number, baseMs: number, maxMs: number): number {
  return Math.min(maxMs, baseMs * 2 ** Math.max(0, Math.min(failures - 1, 30)))
}

/** A reason as one line of bounded length, for decision texts and commit trailers. */
export function oneLine(text: string, max = 300): string {
  const line = text.replace(/\s+/g, ' ').trim()
  return line.length > max ? `${line.slice(0, max - 1)}…` : line
}

/** Who approved, for the merge row's `reviewer` column: "none" when nobody had to. */
export function approvers(approvals: readonly Verdict[]): string {
  return approvals.length ? approvals.map(v => `${v.by} (${v.reviewer})`).join(', ') : 'none'
}

/** Lines for the merge commit's message: who approved and why (git trailers). */
export function reviewTrailer(approvals: readonly Verdict[], mode: ReviewMode, warning: string | null): string {
  if (!approvals.length) return `reviewed-by: none (review: ${mode})${warning ? `\nreview-warning: ${oneLine(warning)}` : ''}`
  return approvals.map(v => `reviewed-by: ${v.by} (${v.reviewer})\nreview-reason: ${oneLine(v.reason)}`).join('\n')
}

/** The experiment's decision text while it waits; the ratchet's own message says why it qualified. */
export function awaitingText(mode: ReviewMode, on: readonly Reviewer[], ratchetMessage: string): string {
  const who = on.map(r => (r === 'agent' ? 'the review agent' : 'the maintainer')).join(' and ')
  return `awaiting review (${mode}) by ${who}; the ratchet accepts it: ${ratchetMessage.replace(/^merged: /, '')}`
}

export function rejectedText(v: Verdict): string {
  return `rejected by review (${v.reviewer} ${v.by}): ${oneLine(v.reason, 1000)}`
}

export function approvedText(ratchetMessage: string, approvals: readonly Verdict[]): string {
  return approvals.length ? `${ratchetMessage}; review approved by ${approvers(approvals)}: ${oneLine(approvals.map(v => v.reason).join(' / '))}` : ratchetMessage
}

import { z } from 'zod'

/**
 * What a work unit asks of a worker (DESIGN §8): `baseline` measures the best as it is, `verify`
 * measures someone else's candidate again, `explore` lets the agent write a new candidate on the
 * best, `rebase` re-applies a stale candidate's idea on the new best.
 */
export const UNIT_KINDS = ['baseline', 'explore', 'verify', 'rebase'] as const
export const UnitKind = z.enum(UNIT_KINDS)
export type UnitKind = z.infer<typeof UnitKind>

/**
 * The kinds whose run trains code an agent has just written: a *candidate* (its author's run is a
 * claim, docs/RATCHET.md). Baselines and verifications measure code that is already committed, so
 * their numbers may serve as a parent's samples and a candidate's never do.
 */
export const CANDIDATE_KINDS = ['explore', 'rebase'] as const satisfies readonly UnitKind[]
export type CandidateKind = (typeof CANDIDATE_KINDS)[number]

/** The kinds that measure committed code again: their runs are samples of a commit, not claims. */
export const MEASURING_KINDS = ['baseline', 'verify'] as const satisfies readonly UnitKind[]

/** Whether a unit, experiment or measurement of this kind is a candidate (see CANDIDATE_KINDS). */
export function isCandidate(kind: string): kind is CandidateKind {
  return kind === 'explore' || kind === 'rebase'
}

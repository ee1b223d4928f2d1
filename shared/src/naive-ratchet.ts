import type { ResultStatus } from './results-tsv.ts'

/**
 * The single-run ratchet of plain autoresearch: keep a change if its one run beats the number the
 * current best was kept with (by more than `minDelta`). No noise floor, no verification, no
 * hardware classes — it keeps luck. `worker solo` runs it (DESIGN §9), and the ratchet simulation
 * uses it as the yardstick the noise-aware ratchet is measured against (docs/RATCHET.md).
 */
export type NaiveDecision =
  /** `delta`: the run minus the best's number; null when there was no best yet. */
  | { kind: 'merge'; delta: number | null }
  | { kind: 'discard'; delta: number }
  | { kind: 'reject'; reason: 'non-finite-metric' | 'non-positive-metric' }

/** `candidate`: the new run's val_bpb (null: none); `best`: the val_bpb the best was kept with (null: no best yet). */
export function decideNaive(candidate: number | null, best: number | null, minDelta = 0): NaiveDecision {
  if (candidate === null || !Number.isFinite(candidate)) return { kind: 'reject', reason: 'non-finite-metric' }
  if (candidate <= 0) return { kind: 'reject', reason: 'non-positive-metric' }
  if (best === null) return { kind: 'merge', delta: null }
  const delta = candidate - best
  return candidate < best - minDelta ? { kind: 'merge', delta } : { kind: 'discard', delta }
}

/** The decision in results.tsv's words: merged is `keep`, a rejected number is a `crash`. */
export function naiveResultStatus(d: NaiveDecision): ResultStatus {
  return d.kind === 'merge' ? 'keep' : d.kind === 'discard' ? 'discard' : 'crash'
}

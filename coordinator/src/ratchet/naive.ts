/**
 * The single-run ratchet of plain autoresearch, kept as the yardstick the noise-aware one is
 * measured against: keep a change if its one run beats the number the current best was kept with.
 * No noise floor, no verification, no hardware classes — it keeps luck, which is the point of the
 * comparison in docs/RATCHET.md.
 */
export type NaiveDecision =
  | { kind: 'merge'; delta: number }
  | { kind: 'discard'; delta: number }
  | { kind: 'reject'; reason: 'non-finite-metric' | 'non-positive-metric' }

/** `candidate`: the new run's val_bpb; `best`: the val_bpb the current best was kept with. */
export function decideNaive(candidate: number, best: number): NaiveDecision {
  if (!Number.isFinite(candidate)) return { kind: 'reject', reason: 'non-finite-metric' }
  if (candidate <= 0) return { kind: 'reject', reason: 'non-positive-metric' }
  const delta = candidate - best
  return delta < 0 ? { kind: 'merge', delta } : { kind: 'discard', delta }
}

/**
 * The knobs of the ratchet. Field names match the campaign spec's noise policy (shared/campaign.ts)
 * so a spec's `noise` plus its `budgetSeconds` can be passed as they are.
 */
export interface RatchetSettings {
  /** Smallest improvement worth keeping, in val_bpb; also the harm a simplification may cost. */
  minDelta: number
  /** How many standard errors an improvement must clear (one-sided). */
  z: number
  /** Verification runs by workers other than the candidate's own before a merge (0: none). */
  replications: number
  /** An improvement (−Δ) claimed above this counts only when other workers reproduce it. */
  maxImprovement: number
  /** The campaign's training budget, and the allowed relative deviation of training_seconds. */
  budgetSeconds: number
  budgetTolerance: number
  /**
   * Let the candidate's own worker re-run it as a verification. Off by default: results from
   * untrusted workers count only when someone else reproduces them. Meant for single-worker
   * campaigns, where nobody else can. The cap still needs another worker.
   */
  allowSelfVerification?: boolean
}

/**
 * Defaults chosen with the simulation in bench/ratchet (see docs/RATCHET.md for the numbers):
 * z = 2 with 2 verifications keeps false accepts under 5 % of merges while keeping more than 80 %
 * of real improvements larger than 2σ, as long as the parent has 4 baseline runs on the class.
 */
export const DEFAULT_RATCHET_SETTINGS: RatchetSettings = {
  minDelta: 0.001,
  z: 2,
  replications: 2,
  maxImprovement: 0.25,
  budgetSeconds: 300,
  budgetTolerance: 0.25,
  allowSelfVerification: false,
}

/** Settings come from a validated campaign spec; anything out of range here is a bug. */
export function assertValidSettings(s: RatchetSettings): void {
  const bad = (what: string, value: unknown): never => {
    throw new RangeError(`ratchet settings: ${what}, got ${String(value)}`)
  }
  if (!(Number.isFinite(s.minDelta) && s.minDelta >= 0)) bad('minDelta must be ≥ 0', s.minDelta)
  if (!(Number.isFinite(s.z) && s.z >= 0)) bad('z must be ≥ 0', s.z)
  if (!(Number.isInteger(s.replications) && s.replications >= 0)) bad('replications must be a whole number ≥ 0', s.replications)
  if (!(Number.isFinite(s.maxImprovement) && s.maxImprovement > 0)) bad('maxImprovement must be > 0', s.maxImprovement)
  if (!(Number.isFinite(s.budgetSeconds) && s.budgetSeconds > 0)) bad('budgetSeconds must be > 0', s.budgetSeconds)
  if (!(Number.isFinite(s.budgetTolerance) && s.budgetTolerance >= 0 && s.budgetTolerance < 1)) bad('budgetTolerance must be in [0, 1)', s.budgetTolerance)
}

import type { SequentialSettings } from './sequential.ts'

/**
 * How a verdict is reached (docs/RATCHET.md): `fixed`, the issue-15 rule — a screen at screenZ,
 * then `replications` verifications, then a verdict at z; `sequential`, issue 17's — one
 * sequential test from the claim on, stopping as soon as the evidence is decisive, its bar set by
 * the campaign's observed rate of real gains, and a change's evidence carried onto a newer best;
 * `pooled`, `sequential` with the verifications of every approved class as evidence, each class's
 * Δ against that class's own parent runs, in units of that class's σ (decide-sequential.ts);
 * `parallel`, `pooled` with the knobs of PARALLEL_SEQUENTIAL (sequential.ts): several runs asked
 * for per look, a candidate whose parent was replaced moved onto the best at its next look, and
 * wild runs tamed (a parent run far from its median left out, a candidate run counted at most 3σ
 * from the parent's mean).
 */
export type RatchetPolicy = 'fixed' | 'sequential' | 'pooled' | 'parallel'

/** Whether a policy runs the sequential test (`pooled` is `sequential` with evidence from every approved class). */
export const isSequential = (policy: RatchetPolicy | undefined): boolean => policy === 'sequential' || policy === 'pooled' || policy === 'parallel'

/** Whether a policy pools every approved class's runs and verifies on any class (`pooled`, and `parallel`, which is `pooled` run for many workers). */
export const poolsClasses = (policy: RatchetPolicy | undefined): boolean => policy === 'pooled' || policy === 'parallel'

/**
 * The knobs of the ratchet. Field names match the campaign spec's noise policy (shared/campaign.ts)
 * so a spec's `noise` plus its `budgetSeconds` can be passed as they are.
 */
export interface RatchetSettings {
  /** Smallest improvement worth keeping, in val_bpb; also the harm a simplification may cost. */
  minDelta: number
  /** How many standard errors an improvement must clear in the verdict, with verifications in (one-sided). */
  z: number
  /**
   * The same for the screen, on the author's runs alone, which decides whether C earns
   * verification runs at all. Absent: z (the rule of DESIGN §7 as first written). Lower than z
   * spends a few runs verifying near-misses and keeps far more real improvements: the single
   * screening run, not the verdict, is where a strict rule loses most of them (docs/RATCHET.md).
   */
  screenZ?: number
  /** Verification runs by workers of other contributors than the candidate's before a merge (0: none). */
  replications: number
  /** An improvement (−Δ) claimed above this counts only when other contributors reproduce it. */
  maxImprovement: number
  /** The campaign's training budget, and the allowed relative deviation of training_seconds. */
  budgetSeconds: number
  budgetTolerance: number
  /**
   * The allowed deviation in seconds when that is more than the relative one (absent:
   * BUDGET_SLACK_SECONDS). The trainer stops at the step ending nearest the budget, so it misses
   * by up to half a step: on a slow CPU with a budget of seconds, that is far more than 25 %.
   */
  budgetSlackSeconds?: number
  /**
   * Let the candidate's own contributor (its author's worker or any other worker on the same token)
   * re-run it as a verification. Off by default: results from untrusted contributors count only
   * when someone else reproduces them. Meant for single-contributor campaigns, where nobody else
   * can. The cap still needs another contributor.
   */
  allowSelfVerification?: boolean
  /**
   * Distinct contributors, other than the author, whose runs a verification needs (capped by the
   * runs required). Absent: 1. With 2 or more, the verdict must also hold without the runs of any
   * one of them (decide.ts): one accomplice cannot carry a merge. Issue 15 asks for 2.
   */
  minVerifierContributors?: number
  /**
   * How many standard errors above the other contributors' Δ a simplification's bound sits, which
   * must stay within minDelta for it to merge (non-inferiority: Δ + simplificationZ·SE ≤ minDelta).
   * Absent: SIMPLIFICATION_Z. 0 is the point estimate alone, the rule before session 18, under which
   * a forged claim merged a deletion truly 0.5σ worse 18 % of the time (docs/RATCHET.md, "Simplifications").
   */
  simplificationZ?: number
  /** Absent: `fixed`. Simplifications (code deleted, within noise) are judged by the fixed rule under either. */
  policy?: RatchetPolicy
  /** The sequential policy's knobs over DEFAULT_SEQUENTIAL (sequential.ts). */
  sequential?: Partial<SequentialSettings>
}

/**
 * Defaults chosen with the simulation in bench/ratchet (docs/RATCHET.md has the numbers): a
 * lenient screen (1σ) and a strict verdict (2.25σ) after 3 verifications keep false accepts under
 * 5 % of merges and more than 80 % of real improvements larger than 2σ, with the scheduler's
 * 4 baseline runs per best and class — both when a third of all ideas are real improvements and
 * when only a tenth are.
 */
export const DEFAULT_RATCHET_SETTINGS: RatchetSettings = {
  minDelta: 0.001,
  z: 2.25,
  screenZ: 1,
  replications: 3,
  maxImprovement: 0.25,
  budgetSeconds: 300,
  budgetTolerance: 0.25,
  allowSelfVerification: false,
  minVerifierContributors: 2,
}

/** See RatchetSettings.simplificationZ: one standard error, the screen's bar. */
export const SIMPLIFICATION_Z = 1

/** See RatchetSettings.budgetSlackSeconds: a step or two of the CPU trainer under load. */
export const BUDGET_SLACK_SECONDS = 5

/**
 * Whether a run's training_seconds fits the budget: within max(budgetTolerance · budget,
 * budgetSlackSeconds) of it. Returns null when it does, else what was allowed, for the message.
 */
export function budgetProblem(trainingSeconds: number, s: Pick<RatchetSettings, 'budgetSeconds' | 'budgetTolerance' | 'budgetSlackSeconds'>): string | null {
  const b = s.budgetSeconds
  const slack = Math.max(s.budgetTolerance * b, s.budgetSlackSeconds ?? BUDGET_SLACK_SECONDS)
  if (Number.isFinite(trainingSeconds) && Math.abs(trainingSeconds - b) <= slack) return null
  return `trained ${trainingSeconds}s, outside the ${b}s budget ±${Number(slack.toFixed(2))}s`
}

/** Settings come from a validated campaign spec; anything out of range here is a bug. */
export function assertValidSettings(s: RatchetSettings): void {
  const bad = (what: string, value: unknown): never => {
    throw new RangeError(`ratchet settings: ${what}, got ${String(value)}`)
  }
  if (!(Number.isFinite(s.minDelta) && s.minDelta >= 0)) bad('minDelta must be ≥ 0', s.minDelta)
  if (!(Number.isFinite(s.z) && s.z >= 0)) bad('z must be ≥ 0', s.z)
  if (s.screenZ !== undefined && !(Number.isFinite(s.screenZ) && s.screenZ >= 0)) bad('screenZ must be ≥ 0', s.screenZ)
  if (s.simplificationZ !== undefined && !(Number.isFinite(s.simplificationZ) && s.simplificationZ >= 0)) bad('simplificationZ must be ≥ 0', s.simplificationZ)
  if (!(Number.isInteger(s.replications) && s.replications >= 0)) bad('replications must be a whole number ≥ 0', s.replications)
  if (!(Number.isFinite(s.maxImprovement) && s.maxImprovement > 0)) bad('maxImprovement must be > 0', s.maxImprovement)
  if (!(Number.isFinite(s.budgetSeconds) && s.budgetSeconds > 0)) bad('budgetSeconds must be > 0', s.budgetSeconds)
  if (!(Number.isFinite(s.budgetTolerance) && s.budgetTolerance >= 0 && s.budgetTolerance < 1)) bad('budgetTolerance must be in [0, 1)', s.budgetTolerance)
  if (s.minVerifierContributors !== undefined && !(Number.isInteger(s.minVerifierContributors) && s.minVerifierContributors >= 0))
    bad('minVerifierContributors must be a whole number ≥ 0', s.minVerifierContributors)
  if (s.budgetSlackSeconds !== undefined && !(Number.isFinite(s.budgetSlackSeconds) && s.budgetSlackSeconds >= 0)) bad('budgetSlackSeconds must be ≥ 0', s.budgetSlackSeconds)
}

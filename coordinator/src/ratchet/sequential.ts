/**
 * The arithmetic of the `sequential` policy (issue 17; docs/RATCHET.md, "Sequential policy"): a
 * sequential probability ratio test of "no change" against "a gain of `gainSigmas`·σ" on the
 * difference of means, with its false-accept rate set from the campaign's observed rate of real
 * gains. Pure numbers; decide.ts applies them with the issue-15 guards around them.
 *
 * Why an SPRT: the fixed rule ran 3 verifications (and up to 4 more) on every screened claim,
 * clear loser or clear winner alike. Wald's test stops as soon as the evidence is decisive either
 * way, with both error rates bounded, so a lucky null usually ends after one verification and a
 * large gain after the minimum the guards ask for.
 *
 * Why an adaptive bar: the share of merges that are false is, roughly,
 *   α·(1 − π) / (α·(1 − π) + power·π)
 * for a per-candidate false-accept rate α and a share π of real gains among the ideas. A fixed α
 * that gives 1 % false merges when a third of ideas are real gives ~20 % when 1 % are. So α is
 * chosen for a target share of false merges at the observed π (`realRate`), which in a mature
 * campaign asks for much stronger evidence.
 */

import { median } from './stats.ts'

/** An estimate of a change's effect Δ on val_bpb (negative is better) and its variance. */
export interface EffectEstimate {
  delta: number
  variance: number
}

export interface SequentialSettings {
  /** The alternative of the test, in units of σ: the gain we most want to keep. */
  gainSigmas: number
  /** The share of merges allowed to be false (no real gain), at the campaign's observed π. */
  falseShare: number
  /** β: the chance of discarding a gain of exactly gainSigmas·σ. */
  missRate: number
  /** Verification runs after which an undecided candidate is discarded (a truncated test). */
  maxVerifications: number
  /**
   * How much the evidence about a change on its old parent counts toward the same change carried
   * onto a newer best (a weight on its information, 1/variance): below 1 because the change may
   * interact with what was merged meanwhile; above 0 because most changes keep their effect.
   */
  carryWeight: number
  /**
   * Carried evidence is left out of a verdict when the change's runs on its new parent are worse
   * than it by more than this many standard errors (0: never): a change whose effect was changed by
   * what merged meanwhile is judged on what it does now, not on what it did before.
   */
  carryCheckZ: number
  /** A Beta(a, b) prior on the share of ideas that are real gains, before the campaign has data. */
  priorGains: number
  priorIdeas: number
  /**
   * The share of real gains the policy is expected to merge. Merges among decided ideas count only
   * the gains that were found; dividing by this keeps the observed rate from feeding on itself (a
   * strict bar merges few, so the rate looks low, so the bar gets stricter). The grid measures
   * ~0.5 for the fixed rule on its realistic mix (~145 merges of ~300 real ideas), but 0.5 let
   * false merges through at a 1 %-real prior (3 of 12 merges over 4 campaigns, docs/RATCHET.md),
   * so the default leaves the rate uncorrected: strict, at a cost in runs.
   */
  expectedPower: number
  /**
   * Ask for runs of the parent, on the candidate's class, alongside its verifications while the
   * parent has fewer runs than the candidate will: with n_P fixed at the scheduler's baselines the
   * variance σ²(1/n_C + 1/n_P) cannot fall below σ²/n_P however many verifications run, so a gain
   * under ~1.8σ could never reach the merge boundary (docs/RATCHET.md, issue 17). Off: production's
   * coordinator does not queue such runs yet.
   */
  parentOnDemand: boolean
  /**
   * Verification runs kept outstanding while the test is undecided (at most the runs left before
   * `maxVerifications`). One at a time, a candidate took ~8 looks of a run's length each, and at
   * 16 workers the best moved under it 2–3 times on the way (docs/RATCHET.md, "Third round,
   * session 13").
   */
  runsPerLook: number
  /**
   * A candidate under test whose parent is no longer the best goes onto the best with the evidence
   * it has at its next look, rather than be verified on against a parent nobody will build on: on
   * the 16-worker grid 65 % of verification runs went to such candidates.
   */
  carryOnMove: boolean
  /**
   * Wild runs (the grid has 3 % of runs at 4× the noise), in σ of their class; 0: none. A parent
   * run further than this from the median of the parent's runs on its class (with at least 3 of
   * them) is left out of the parent's mean: every candidate of a parent is measured against the
   * same few runs, so one wild baseline made null changes look like gains, and more runs of the
   * candidates could not undo it. A candidate's run counts at most this far from the parent's mean:
   * a single wild run on a class with few runs lifted the pooled test by 3–5 nats at once. With
   * `runsPerLook` and `carryOnMove` but neither, 3 of 86 merges at the 1 % prior were false.
   */
  wildSigmas: number
}

export const DEFAULT_SEQUENTIAL: SequentialSettings = {
  gainSigmas: 2,
  falseShare: 0.02,
  missRate: 0.1,
  maxVerifications: 12,
  carryWeight: 0.5,
  carryCheckZ: 0,
  priorGains: 1,
  priorIdeas: 10,
  expectedPower: 1,
  parentOnDemand: false,
  runsPerLook: 1,
  carryOnMove: false,
  wildSigmas: 0,
}

/** The `parallel` policy's knobs over DEFAULT_SEQUENTIAL (docs/RATCHET.md, "Third round, session 13"; `carryCheckZ`: session 16). */
export const PARALLEL_SEQUENTIAL: Partial<SequentialSettings> = { runsPerLook: 4, carryOnMove: true, wildSigmas: 3, carryCheckZ: 2 }

/** The runs left after leaving out those further than `cutoff`·σ from their median (at least 3 runs; cutoff 0: all). */
export function withoutWild(xs: readonly number[], sigma: number, cutoff: number): number[] {
  if (!(cutoff > 0) || xs.length < 3 || !(sigma > 0)) return [...xs]
  const m = median(xs)
  const kept = xs.filter(x => Math.abs(x - m) <= cutoff * sigma)
  return kept.length ? kept : [...xs]
}

/** Inverse-variance combination of two independent estimates of the same effect. */
export function combine(a: EffectEstimate, b: EffectEstimate): EffectEstimate {
  const w = 1 / a.variance + 1 / b.variance
  return { delta: (a.delta / a.variance + b.delta / b.variance) / w, variance: 1 / w }
}

/** The estimate from n_C runs of the candidate and n_P of the parent, each of sd σ. */
export function estimateOf(candidateMean: number, nC: number, parentMean: number, nP: number, sigma: number): EffectEstimate {
  return { delta: candidateMean - parentMean, variance: sigma * sigma * (1 / nC + 1 / nP) }
}

/** An estimate with its information scaled by `weight` (0 < weight ≤ 1). */
export function discounted(e: EffectEstimate, weight: number): EffectEstimate {
  return { delta: e.delta, variance: e.variance / weight }
}

/**
 * log of the likelihood ratio of "Δ = −gain" over "Δ = 0" given the estimate: positive favours
 * the gain. For Δ̂ ~ N(δ, v): (gain·(−Δ̂) − gain²/2) / v.
 */
export function logLikelihoodRatio(e: EffectEstimate, gain: number): number {
  return (gain * -e.delta - (gain * gain) / 2) / e.variance
}

/**
 * The campaign's observed rate of real gains: merges among decided original candidates, under a
 * Beta(priorGains, priorIdeas − priorGains) prior, divided by the share of real gains the policy
 * is expected to find (`expectedPower`).
 */
export function realRateOf(merges: number, decided: number, s: Pick<SequentialSettings, 'priorGains' | 'priorIdeas' | 'expectedPower'> = DEFAULT_SEQUENTIAL): number {
  const rate = (merges + s.priorGains) / (decided + s.priorIdeas) / s.expectedPower
  return Math.min(0.5, Math.max(0.001, rate))
}

export interface Boundaries {
  /** Merge when the log likelihood ratio reaches this. */
  upper: number
  /** Discard when it falls to this. */
  lower: number
  /** The per-candidate false-accept rate behind `upper`. */
  alpha: number
}

/**
 * Wald's boundaries, log((1 − β)/α) and log(β/(1 − α)), with α set so that at a share π of real
 * gains the expected share of false merges is `falseShare`, counting on power 1 − β.
 */
export function boundaries(realRate: number, s: SequentialSettings): Boundaries {
  const f = s.falseShare
  const alpha = Math.min(0.05, (f / (1 - f)) * (1 - s.missRate) * (realRate / (1 - realRate)))
  return { upper: Math.log((1 - s.missRate) / alpha), lower: Math.log(s.missRate / (1 - alpha)), alpha }
}

/**
 * Parent runs to ask for alongside `needed` more candidate runs: enough that the parent has as many
 * runs as the candidate will (the split of a fixed number of runs that minimises 1/n_C + 1/n_P),
 * at most `needed` of them, so the test never waits on more than twice the runs it asked for.
 */
export function parentRunsWanted(candidateRuns: number, parentRuns: number, needed: number): number {
  return Math.max(0, Math.min(needed, candidateRuns + needed - parentRuns))
}

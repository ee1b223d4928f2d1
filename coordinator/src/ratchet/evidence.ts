import { mean } from './stats.ts'
import { SIMPLIFICATION_Z, type RatchetSettings } from './settings.ts'
import type { CandidateSample, ClassRuns, Decision, Evidence, ParentRun } from './verdict-types.ts'

/**
 * The pieces of a verdict both policies share (decide.ts: `fixed`; decide-sequential.ts:
 * `sequential`): the evidence of a set of runs against the parent's, how it reads in a message, and
 * the issue-15 guards — the verdict without any one other contributor, and a contradicted claim.
 */

/**
 * Verification runs beyond `replications` a candidate may earn when its win does not yet hold
 * without the runs of any one other contributor (see withoutAnyOne).
 */
export const EXTRA_VERIFICATIONS = 4

export const SIMPLIFICATION = 'simplification (deletes code, within noise)'
export const fmt = (x: number): string => x.toFixed(6)
export const signed = (x: number): string => (x >= 0 ? '+' : '') + fmt(x)

export function evidenceOf(samples: readonly CandidateSample[], parent: readonly number[], sigma: number, settings: RatchetSettings, samplesUsed: Evidence['samplesUsed']): Evidence {
  const candidateMean = mean(samples.map(s => s.valBpb))
  const parentMean = mean(parent)
  const nC = samples.length
  const nP = parent.length
  return {
    delta: candidateMean - parentMean,
    threshold: Math.max(settings.minDelta, settings.z * sigma * Math.sqrt(1 / nC + 1 / nP)),
    sigma,
    nC,
    nP,
    candidateMean,
    parentMean,
    samplesUsed,
  }
}

/**
 * A simplification's bound on its harm, Δ + simplificationZ·σ·√(1/n_C + 1/n_P), which must stay
 * within minDelta for it to merge: not worse than the parent, shown rather than merely not refuted.
 */
export function harmBound(e: Evidence, settings: RatchetSettings): number {
  return e.delta + (settings.simplificationZ ?? SIMPLIFICATION_Z) * e.sigma * Math.sqrt(1 / e.nC + 1 / e.nP)
}

export function describe(e: Evidence): string {
  return `Δ ${signed(e.delta)} (C ${fmt(e.candidateMean)} over ${e.nC}, P ${fmt(e.parentMean)} over ${e.nP}; threshold ${fmt(e.threshold)} at σ ${fmt(e.sigma)})`
}
/**
 * The verdict must hold without the runs of any one other contributor k (of C and of P): an
 * accomplice's forged verification or inflated baselines cannot be what carries it. Parent runs
 * without k and the author are used while any remain (else without k, else all: the check then
 * guards C's runs only; docs/RATCHET.md says when that happens). Returns the failing k's evidence.
 */
export function withoutAnyOne(
  independent: readonly CandidateSample[], parent: readonly ParentRun[], authors: ReadonlySet<string>, sigma: number, settings: RatchetSettings,
  holds: (e: Evidence) => boolean,
): Evidence | undefined {
  for (const k of everyoneElse(independent, parent, authors)) {
    const rest = independent.filter(s => s.contributorId !== k)
    const p1 = parent.filter(r => r.contributorId !== k && !authors.has(r.contributorId))
    const p2 = p1.length ? p1 : parent.filter(r => r.contributorId !== k)
    const p = (p2.length ? p2 : parent).map(r => r.valBpb)
    const e = evidenceOf(rest, p, sigma, settings, 'independent')
    if (!holds(e)) return e
  }
  return undefined
}

/**
 * The other contributors whose runs a verdict rests on: C's verifiers and P's baseline runners.
 * A σ poisoner's one baseline of 4.0 among runs of 1.5 put P's mean 0.6 high, and every
 * candidate of that parent merged: its runs must be left out in turn too, though it verified nothing.
 */
export function everyoneElse(independent: readonly CandidateSample[], parent: readonly ParentRun[], authors: ReadonlySet<string>): Set<string> {
  return new Set([...independent.map(s => s.contributorId), ...parent.map(r => r.contributorId).filter(id => !authors.has(id))])
}

/** How many distinct other contributors must verify: min(minVerifierContributors, runs required). */
export function verifierContributors(settings: RatchetSettings, independentOnly: boolean): number {
  if (settings.allowSelfVerification === true && !independentOnly) return 0
  const required = independentOnly ? Math.max(1, settings.replications) : settings.replications
  return Math.min(settings.minVerifierContributors ?? 1, required)
}

export interface Measured {
  parentRuns: readonly ParentRun[]
  parentSamples: readonly number[]
  author: readonly CandidateSample[]
  independent: readonly CandidateSample[]
  authors: ReadonlySet<string>
  carriedAboveCap: boolean
  /** `pooled` policy: C's runs on the other approved classes (none under the other policies). */
  elsewhere: readonly ClassRuns[]
}

/**
 * A discard whose claim the other contributors' runs contradict: the author's runs lie below those
 * of each of at least two other contributors by more than z·σ·√(1/n_author + 1/n_other). Honest claims are lucky more often than not (they
 * were verified *because* they looked good) but rarely by that much; a forger's claims are so
 * every time. The coordinator counts these per contributor (units/suspects.ts: `claim-contradicted`).
 */
export function contradicted(d: Decision, author: readonly CandidateSample[], independent: readonly CandidateSample[], sigma: number, settings: RatchetSettings): Decision {
  if (d.kind !== 'discard' || !author.length) return d
  // Below *every* other contributor's runs, and at least two of them: one saboteur verifying high
  // must not make an honest claim look forged.
  const byContributor = new Map<string, number[]>()
  for (const s of independent) byContributor.set(s.contributorId, [...(byContributor.get(s.contributorId) ?? []), s.valBpb])
  const claimed = mean(author.map(s => s.valBpb))
  const gaps = [...byContributor.values()].map(v => ({ gap: claimed - mean(v), bar: -settings.z * sigma * Math.sqrt(1 / author.length + 1 / v.length) }))
  if (gaps.length < 2 || gaps.some(g => g.gap >= g.bar)) return d
  const gap = Math.max(...gaps.map(g => g.gap))
  return { ...d, claimContradicted: true, message: `${d.message}; the claim lies ${fmt(-gap)} below the other contributors' runs` }
}

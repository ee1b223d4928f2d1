/**
 * Reporters whose numbers run systematically low or high (issue 15: the lowball reporter, the σ
 * poisoner, the saboteur verifier). Only runs nobody chose are compared — baselines and
 * verifications: a claim is verified *because* it looked good, so an honest author's claims sit
 * low too. On those, an honest contributor's runs of a commit differ from other contributors' runs
 * of the same commit by noise alone, whatever the commit; a contributor who reports every number
 * 3σ low differs by 3σ on every commit it shares, and a few commits are enough to see it.
 *
 * Per commit (and class) a contributor k shares with others:
 *   d = (mean of k's runs − median of the other contributors' means) / σ,  v = 1/n_k + 1/n_others
 * and over the commits, the precision-weighted mean D = Σ(d/v) / Σ(1/v), with z = D·√Σ(1/v).
 * k is a biased reporter when |z| ≥ BIAS_Z (chance: 6·10⁻⁵ for an honest contributor) and
 * |D| ≥ BIAS_SHIFT (a real offset, not a trace of one), over at least BIAS_MIN_COMMITS commits.
 * The median keeps one biased contributor from moving everyone else's comparison.
 */
import { mean, median } from './stats.ts'

export const BIAS_Z = 4
export const BIAS_SHIFT = 1.5
export const BIAS_MIN_COMMITS = 3

export interface UnselectedRun {
  contributorId: string
  hardwareClass: string
  commit: string
  valBpb: number
}

export interface ReportingBias {
  contributorId: string
  /** D: how far its runs sit from other contributors' runs of the same commits, in σ (negative: low). */
  shiftSigma: number
  z: number
  commits: number
}

/**
 * Pure: the contributors whose unselected runs are biased, with the evidence; `sigmaOf` gives σ
 * per class. The most biased is taken out first and the rest compared again without its runs: on
 * a commit only it and one honest contributor ran, the honest one looked as far off as it did.
 */
export function biasedReporters(runs: readonly UnselectedRun[], sigmaOf: (hardwareClass: string) => number): ReportingBias[] {
  const found: ReportingBias[] = []
  for (;;) {
    const out = new Set(found.map(b => b.contributorId))
    const worst = compare(runs.filter(r => !out.has(r.contributorId)), sigmaOf)
      .filter(b => b.commits >= BIAS_MIN_COMMITS && Math.abs(b.z) >= BIAS_Z && Math.abs(b.shiftSigma) >= BIAS_SHIFT)
      .sort((x, y) => Math.abs(y.z) - Math.abs(x.z))[0]
    if (!worst) return found.sort((x, y) => x.contributorId.localeCompare(y.contributorId))
    found.push(worst)
  }
}

/** Every contributor's D and z over the commits it shares (see the header). */
function compare(runs: readonly UnselectedRun[], sigmaOf: (hardwareClass: string) => number): ReportingBias[] {
  const byCommit = new Map<string, UnselectedRun[]>()
  for (const r of runs) {
    if (!(Number.isFinite(r.valBpb) && r.valBpb > 0)) continue
    const key = `${r.hardwareClass}\0${r.commit}`
    const group = byCommit.get(key)
    if (group) group.push(r)
    else byCommit.set(key, [r])
  }
  const acc = new Map<string, { w: number; wd: number; commits: number }>()
  for (const group of byCommit.values()) {
    const sigma = sigmaOf(group[0].hardwareClass)
    if (!(sigma > 0)) continue
    const byContributor = new Map<string, number[]>()
    for (const r of group) byContributor.set(r.contributorId, [...(byContributor.get(r.contributorId) ?? []), r.valBpb])
    if (byContributor.size < 2) continue
    for (const [k, mine] of byContributor) {
      const others = [...byContributor].filter(([id]) => id !== k).map(([, v]) => v)
      const d = (mean(mine) - median(others.map(mean))) / sigma
      const v = 1 / mine.length + 1 / others.reduce((n, o) => n + o.length, 0)
      const a = acc.get(k) ?? { w: 0, wd: 0, commits: 0 }
      acc.set(k, { w: a.w + 1 / v, wd: a.wd + d / v, commits: a.commits + 1 })
    }
  }
  return [...acc].map(([contributorId, a]) => ({ contributorId, shiftSigma: a.wd / a.w, z: (a.wd / a.w) * Math.sqrt(a.w), commits: a.commits }))
}

/**
 * Reporters whose numbers run systematically low or high (issue 15: the lowball reporter, the σ
 * poisoner, the saboteur verifier). Only runs nobody chose are compared — baselines and
 * verifications: a claim is verified *because* it looked good, so an honest author's claims sit
 * low too. On those, an honest contributor's runs of a commit differ from other contributors' runs
 * of the same commit by noise alone, whatever the commit; a contributor who reports every number
 * 3σ low differs by 3σ on every commit it shares, and a few commits are enough to see it.
 *
 * Per commit (and class) a contributor k shares with others:
 *   d = (mean of k's runs − median of every contributor's mean, k's included) / σ,  v = 1/n_k + 1/n_others
 * and over the commits, the precision-weighted mean D = Σ(d/v) / Σ(1/v), with z = D·√Σ(1/v).
 * k is a biased reporter when |z| ≥ BIAS_Z (chance: 6·10⁻⁵ for an honest contributor) and
 * |D| ≥ BIAS_SHIFT (a real offset, not a trace of one), over at least BIAS_MIN_COMMITS commits.
 * The median keeps one biased contributor from moving everyone else's comparison (with k's own
 * mean in it: of an honest pair and a σ poisoner's 4.0, the median of the others alone is their
 * mean, and the honest one looked far low; an honest run in the median only shrinks d). σ must not be
 * underestimated: the noise floor rests on few runs and came out at half the truth or less, and
 * honest contributors then looked 4σ apart (the caller uses the campaign's prior σ as a floor).
 */
import { mean, median } from './stats.ts'

export const BIAS_Z = 4
export const BIAS_SHIFT = 1.5
export const BIAS_MIN_COMMITS = 3
/**
 * One commit's difference counts at most this many σ: with two others the median is their mean,
 * and a σ poisoner's 4.0 beside an honest 1.45 made the third contributor look 130σ low on it.
 */
export const MAX_DIFFERENCE_SIGMA = 5
const clip = (d: number) => Math.max(-MAX_DIFFERENCE_SIGMA, Math.min(MAX_DIFFERENCE_SIGMA, d))

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

interface Comparison {
  contributorId: string
  hardwareClass: string
  /** (mean of its runs − median of the others' means) / σ. */
  d: number
  /** Its variance in σ²: 1/n_k + 1/n_others. */
  v: number
}

/** One comparison per contributor and commit it shares with others. */
function comparisons(runs: readonly UnselectedRun[], sigmaOf: (hardwareClass: string) => number): Comparison[] {
  const out: Comparison[] = []
  for (const group of byCommit(runs)) {
    // Most commits were run by one contributor only (every exploration's): nothing to compare.
    const first = group[0].contributorId
    if (group.every(r => r.contributorId === first)) continue
    const sigma = sigmaOf(group[0].hardwareClass)
    if (!(sigma > 0)) continue
    const byContributor = new Map<string, number[]>()
    for (const r of group) byContributor.set(r.contributorId, [...(byContributor.get(r.contributorId) ?? []), r.valBpb])
    if (byContributor.size < 2) continue
    for (const [k, mine] of byContributor) {
      const others = [...byContributor].filter(([id]) => id !== k).map(([, v]) => v)
      out.push({
        contributorId: k, hardwareClass: group[0].hardwareClass,
        d: clip((mean(mine) - median([...byContributor.values()].map(mean))) / sigma),
        v: 1 / mine.length + 1 / others.reduce((n, o) => n + o.length, 0),
      })
    }
  }
  return out
}

/** Every contributor's D and z over the commits it shares (see the header). */
function compare(runs: readonly UnselectedRun[], sigmaOf: (hardwareClass: string) => number): ReportingBias[] {
  const acc = new Map<string, { w: number; wd: number; commits: number }>()
  for (const c of comparisons(runs, sigmaOf)) {
    const a = acc.get(c.contributorId) ?? { w: 0, wd: 0, commits: 0 }
    acc.set(c.contributorId, { w: a.w + 1 / c.v, wd: a.wd + c.d / c.v, commits: a.commits + 1 })
  }
  return [...acc].map(([contributorId, a]) => ({ contributorId, shiftSigma: a.wd / a.w, z: (a.wd / a.w) * Math.sqrt(a.w), commits: a.commits }))
}

/**
 * An author's claims against what other contributors measured of the same commits (issue 15: the
 * forger below the cap, whose every claim looked 4σ better than it ran and so earned three honest
 * verification runs). Per verified candidate: gap = (mean of the author's claim runs − median of
 * the other contributors' means on that commit) / σ; biased reporters are left out by the caller. An honest claim runs low too — it was verified
 * *because* it looked good — by 0.5σ on average with the simulation's mix of ideas, 1.6σ when every
 * idea is null; a forger's by what it adds. An author whose precision-weighted mean gap over at
 * least CLAIM_GAP_MIN_CANDIDATES verified candidates is CLAIM_GAP_SIGMA or more below is a suspect
 * (an honest author of nothing but null ideas gets there about once in a thousand; a forger 4σ
 * below, 19 times in 20 by its third verified candidate, `docs/RATCHET.md`).
 */
export const CLAIM_GAP_SIGMA = 3
export const CLAIM_GAP_MIN_CANDIDATES = 3

export interface CommitRun extends UnselectedRun {
  /** A claim: the author's run of its own candidate (explore). */
  claim: boolean
}

export interface ClaimGap {
  contributorId: string
  gapSigma: number
  candidates: number
}

/** Pure: the authors whose claims sit CLAIM_GAP_SIGMA or more below others' runs of the same commits. */
export function overclaimers(runs: readonly CommitRun[], sigmaOf: (hardwareClass: string) => number): ClaimGap[] {
  const acc = new Map<string, { w: number; wg: number; candidates: number }>()
  for (const group of byCommit(runs)) {
    // Most commits have no claim (baselines of a best) or nobody else's run (explorations that
    // were never verified): skipped before anything is gathered.
    const author = group.find(r => r.claim)?.contributorId
    if (!author || !group.some(r => !r.claim && r.contributorId !== author)) continue
    const sigma = sigmaOf(group[0].hardwareClass)
    const claims = group.filter(r => r.claim)
    if (!(sigma > 0)) continue
    const mine = claims.filter(r => r.contributorId === author).map(r => r.valBpb)
    // The median of the other contributors' means: a σ poisoner's 4.0 among them made an honest
    // claim look 200σ low.
    const byOther = new Map<string, number[]>()
    for (const r of group) if (!r.claim && r.contributorId !== author) byOther.set(r.contributorId, [...(byOther.get(r.contributorId) ?? []), r.valBpb])
    if (!byOther.size) continue
    const others = [...byOther.values()]
    const v = 1 / mine.length + 1 / others.reduce((n, o) => n + o.length, 0)
    const a = acc.get(author) ?? { w: 0, wg: 0, candidates: 0 }
    acc.set(author, { w: a.w + 1 / v, wg: a.wg + clip((mean(mine) - median(others.map(mean))) / sigma) / v, candidates: a.candidates + 1 })
  }
  return [...acc]
    .map(([contributorId, a]) => ({ contributorId, gapSigma: a.wg / a.w, candidates: a.candidates }))
    .filter(g => g.candidates >= CLAIM_GAP_MIN_CANDIDATES && g.gapSigma <= -CLAIM_GAP_SIGMA)
    .sort((x, y) => x.contributorId.localeCompare(y.contributorId))
}

/** Sane runs grouped by commit and class: the runs of one code on one kind of machine. */
function byCommit<R extends UnselectedRun>(runs: readonly R[]): R[][] {
  const groups = new Map<string, R[]>()
  // Callers mostly pass runs already sorted by commit and class (units/suspects.ts): a run of the
  // group the previous one joined skips building the key.
  let last: R[] | null = null
  for (const r of runs) {
    if (!(Number.isFinite(r.valBpb) && r.valBpb > 0)) continue
    if (last && last[0].commit === r.commit && last[0].hardwareClass === r.hardwareClass) {
      last.push(r)
      continue
    }
    const key = `${r.hardwareClass}\0${r.commit}`
    const group = groups.get(key)
    if (group) group.push(r)
    else groups.set(key, [r])
    last = group ?? groups.get(key)!
  }
  return [...groups.values()]
}

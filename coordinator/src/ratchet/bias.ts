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
 *
 * The median is a majority vote, and two tokens are a majority of three: where Mallory and a friend
 * were the only others on the commits an honest contributor H ran, they were the median, and by
 * reporting every run 3σ high they made H the biased one (docs/SECURITY.md, "A pair frames an honest
 * contributor"). So k also needs WITNESSES: other contributors j who, each on its own, show k
 * shifted the same way over the commits both ran,
 *   d = (mean of k's runs − mean of j's runs) / σ (clipped as above),  v = 1/n_k + 1/n_j,
 * D_kj and z_kj pooled as above, with |D_kj| ≥ WITNESS_SHIFT and |z_kj| ≥ WITNESS_Z in the direction
 * of k's D. At least MIN_WITNESSES (3) of them: a pair can be two witnesses, never three, so it frames
 * nobody alone; a lowballer among three honest contributors has three. The median test stays as it
 * was, and both must hold. `npx tsx bench/adversaries/pair-framing.ts` (2,000 trials a cell): H
 * flagged in 0 % of trials at 3 to 24 shared commits (81 % after 6 and 99.5 % after 12 before);
 * with one more honest contributor on one of the commits, 1.2–2.6 % (16 % after 3, 71 % after 6,
 * 99 % after 12 before), on all of them 0.6–2.8 % (2–47 %). A lowballer 3σ low among three honest
 * contributors is flagged as often as before (43 % after 3 shared commits, 94 % after 6), and a
 * pair 3σ high beside three honest contributors (88 % after 6); among four honest contributors
 * with 3 of the 5 on each commit, a lowballer a little later (38 % against 40 % after 6, 85 %
 * against 86 % after 12) and a σ poisoner later (37 % against 44 % after 6, 66 % against 74 % after
 * 12, 90 % against 93 % after 24: its pairs' few commits are not all poisoned).
 * The price is symmetric: a pair is now not flagged either where only two others share its
 * commits — two honest and two hostile look alike; at 12 shared commits either side was flagged in
 * about 45 % of trials before, now neither (at 3, about 1 % each).
 */
import { mean, median } from './stats.ts'

export const BIAS_Z = 4
export const BIAS_SHIFT = 1.5
export const BIAS_MIN_COMMITS = 3
/**
 * Distinct other contributors that must each show the shift (and, in `overclaimers`, the claim
 * gap) on their own: one more than a pair.
 */
export const MIN_WITNESSES = 3
/**
 * A witness's own evidence, |z_kj|, must reach this (chance for two honest contributors: 2 %, one
 * side). Without it, one commit an honest third contributor shared with H, 1.5σ apart by chance
 * (14 % of single commits), made it the pair's third witness: H was flagged in 5–14 % of trials
 * with the pair on 3 to 24 commits, 1–3 % with it (pair-framing.ts's fourth row).
 */
export const WITNESS_Z = 2
/**
 * And its D_kj this many σ: half of BIAS_SHIFT, which the median test still asks of k as a whole.
 * A witness is a corroboration, and one pair's commits are few: with BIAS_SHIFT itself as the bar,
 * a σ poisoner (half its runs 4.0) among four honest contributors, 3 of the 5 on each commit, was
 * flagged in 81 % of trials after 24 commits instead of 92 % before (89 % with half), and in one of
 * nine σ-poisoner campaigns of the adversary bench not at all (flagged with half, at the same run as
 * before); an honest contributor beside the pair and one more honest one was flagged in 0–0.5 % of
 * trials with BIAS_SHIFT, 1–2.8 % with half (22–47 % before, 6 to 24 shared commits).
 */
export const WITNESS_SHIFT = BIAS_SHIFT / 2
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
  /** The other contributors whose runs of the commits they share with it show it shifted the same way (see MIN_WITNESSES). */
  witnesses: number
}

/**
 * Pure: the contributors whose unselected runs are biased, with the evidence; `sigmaOf` gives σ
 * per class. The most biased is taken out first and the rest compared again without its runs: on
 * a commit only it and one honest contributor ran, the honest one looked as far off as it did.
 * "Most biased" is among those with their witnesses: one without them is never taken out, so its
 * runs stay in everyone else's comparisons (as they did before the witnesses were asked for).
 */
export function biasedReporters(runs: readonly UnselectedRun[], sigmaOf: (hardwareClass: string) => number): ReportingBias[] {
  const found: ReportingBias[] = []
  for (;;) {
    const out = new Set(found.map(b => b.contributorId))
    const worst = compare(runs.filter(r => !out.has(r.contributorId)), sigmaOf)
      .filter(b => b.commits >= BIAS_MIN_COMMITS && Math.abs(b.z) >= BIAS_Z && Math.abs(b.shiftSigma) >= BIAS_SHIFT && b.witnesses >= MIN_WITNESSES)
      .sort((x, y) => Math.abs(y.z) - Math.abs(x.z))[0]
    if (!worst) return found.sort((x, y) => x.contributorId.localeCompare(y.contributorId))
    found.push(worst)
  }
}

/** Precision-weighted sums of differences in σ: Σ1/v and Σd/v (D = Σd/v ÷ Σ1/v, z = D·√Σ1/v). */
interface Sums {
  w: number
  wd: number
}
const add = (sums: Sums | undefined, d: number, v: number): Sums => ({ w: (sums?.w ?? 0) + 1 / v, wd: (sums?.wd ?? 0) + d / v })

/**
 * Every contributor's D and z over the commits it shares (see the header), and its witnesses: the
 * other contributors whose own runs of the commits both ran show it shifted the same way.
 */
function compare(runs: readonly UnselectedRun[], sigmaOf: (hardwareClass: string) => number): ReportingBias[] {
  const overall = new Map<string, Sums & { commits: number }>()
  /** Per contributor, per other contributor: the sums over the commits both ran. */
  const pairs = new Map<string, Map<string, Sums>>()
  for (const group of byCommit(runs)) {
    // Most commits were run by one contributor only (every exploration's): nothing to compare.
    const first = group[0].contributorId
    if (group.every(r => r.contributorId === first)) continue
    const sigma = sigmaOf(group[0].hardwareClass)
    if (!(sigma > 0)) continue
    const byContributor = new Map<string, number[]>()
    for (const r of group) byContributor.set(r.contributorId, [...(byContributor.get(r.contributorId) ?? []), r.valBpb])
    const means = new Map([...byContributor].map(([k, mine]) => [k, mean(mine)]))
    const centre = median([...means.values()])
    const total = group.length
    for (const [k, mine] of byContributor) {
      const a = overall.get(k)
      overall.set(k, { ...add(a, clip((means.get(k)! - centre) / sigma), 1 / mine.length + 1 / (total - mine.length)), commits: (a?.commits ?? 0) + 1 })
      const mineByOther = pairs.get(k) ?? new Map<string, Sums>()
      pairs.set(k, mineByOther)
      for (const [j, theirs] of byContributor) {
        if (j === k) continue
        mineByOther.set(j, add(mineByOther.get(j), clip((means.get(k)! - means.get(j)!) / sigma), 1 / mine.length + 1 / theirs.length))
      }
    }
  }
  return [...overall].map(([contributorId, a]) => {
    const shiftSigma = a.wd / a.w
    let witnesses = 0
    for (const p of pairs.get(contributorId)?.values() ?? []) {
      const d = p.wd / p.w
      if (Math.sign(d) === Math.sign(shiftSigma) && Math.abs(d) >= WITNESS_SHIFT && Math.abs(d) * Math.sqrt(p.w) >= WITNESS_Z) witnesses++
    }
    return { contributorId, shiftSigma, z: shiftSigma * Math.sqrt(a.w), commits: a.commits, witnesses }
  })
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
 *
 * The median of two tokens is theirs here too: a pair drawn as an honest author's only verifiers,
 * each run 3σ high, made her claims look 3σ optimistic (99.5 % of such authors of null ideas by
 * their third verified candidate). So the gap also needs MIN_WITNESSES other contributors each of
 * whose own runs, pooled over the candidates it verified (gap_j = (mean of the claim runs − mean of
 * j's runs) / σ, v = 1/n_author + 1/n_j), put the claims CLAIM_GAP_SIGMA or more below. The witness's
 * bar is the test's own: a looser one lets an honest third verifier complete the pair's three by
 * chance (an honest claim of a null idea sits 1.6σ low, ±1.2σ, against one run: −2σ is crossed by
 * 37 % of such verifications, −3σ by 12 %). `bench/adversaries/pair-framing.ts`: the pair alone
 * frames nobody (99.5 % by the third verified candidate before); with one of four honest
 * contributors drawn beside the pair on each candidate, 11–15 % of honest authors of null ideas are
 * flagged (92–99 % before; 25–29 % with −2.5σ as the witness's bar, 46–54 % with −2σ). The price is
 * detection: a forger 4σ below, two of four honest contributors verifying each candidate, is flagged
 * by its third verified candidate in 71 % of trials (94 % before), by its sixth in 90 % (98 %), by
 * its ninth in 95 % (99 %); with the unit test's three fixed verifiers, 73 of 100 by the third and
 * 90 by the sixth (95 and 97 before). The claim test is not the forger's only one: its claims are
 * also contradicted (`claim-contradicted`, two other contributors each, units/suspects.ts).
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
  /** The other contributors whose own runs of its verified candidates show its claims CLAIM_GAP_SIGMA or more low (see MIN_WITNESSES). */
  witnesses: number
}

/** Pure: the authors whose claims sit CLAIM_GAP_SIGMA or more below others' runs of the same commits, by the median and by MIN_WITNESSES of them each. */
export function overclaimers(runs: readonly CommitRun[], sigmaOf: (hardwareClass: string) => number): ClaimGap[] {
  const acc = new Map<string, { w: number; wg: number; candidates: number }>()
  /** Per author, per other contributor: the gap's sums over the candidates it ran. */
  const pairs = new Map<string, Map<string, Sums>>()
  for (const group of byCommit(runs)) {
    // Most commits have no claim (baselines of a best) or nobody else's run (explorations that
    // were never verified): skipped before anything is gathered.
    const author = group.find(r => r.claim)?.contributorId
    if (!author || !group.some(r => !r.claim && r.contributorId !== author)) continue
    const sigma = sigmaOf(group[0].hardwareClass)
    const claims = group.filter(r => r.claim)
    if (!(sigma > 0)) continue
    const mine = claims.filter(r => r.contributorId === author).map(r => r.valBpb)
    const claimed = mean(mine)
    // The median of the other contributors' means: a σ poisoner's 4.0 among them made an honest
    // claim look 200σ low.
    const byOther = new Map<string, number[]>()
    for (const r of group) if (!r.claim && r.contributorId !== author) byOther.set(r.contributorId, [...(byOther.get(r.contributorId) ?? []), r.valBpb])
    if (!byOther.size) continue
    const others = [...byOther.values()]
    const v = 1 / mine.length + 1 / others.reduce((n, o) => n + o.length, 0)
    const a = acc.get(author) ?? { w: 0, wg: 0, candidates: 0 }
    acc.set(author, { w: a.w + 1 / v, wg: a.wg + clip((claimed - median(others.map(mean))) / sigma) / v, candidates: a.candidates + 1 })
    const byWitness = pairs.get(author) ?? new Map<string, Sums>()
    pairs.set(author, byWitness)
    for (const [j, theirs] of byOther) byWitness.set(j, add(byWitness.get(j), clip((claimed - mean(theirs)) / sigma), 1 / mine.length + 1 / theirs.length))
  }
  return [...acc]
    .map(([contributorId, a]) => ({
      contributorId, gapSigma: a.wg / a.w, candidates: a.candidates,
      witnesses: [...pairs.get(contributorId)?.values() ?? []].filter(p => p.wd / p.w <= -CLAIM_GAP_SIGMA).length,
    }))
    .filter(g => g.candidates >= CLAIM_GAP_MIN_CANDIDATES && g.gapSigma <= -CLAIM_GAP_SIGMA && g.witnesses >= MIN_WITNESSES)
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

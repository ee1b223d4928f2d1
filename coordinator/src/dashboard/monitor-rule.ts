/**
 * The contributor monitor's rule, pure. For every commit (on one class) that a contributor k and
 * at least one other contributor measured, k disagrees when its mean differs from *every* other
 * contributor's mean by more than Z·σ·√(1/n_k + 1/n_j): one liar among the others must not make
 * everyone else look wrong. With only two contributors on a commit nobody can tell which one is
 * off, so such a commit is not compared at all (both used to disagree, and an honest contributor
 * who happened to share a quarter of its commits with a lowball reporter alone was flagged with it);
 * a third settles it. d, for the average shown, is k's mean minus the
 * median of the others' means. With honest runs that happens to about 2.4 % of
 * comparisons, so a contributor is flagged when at least FLAG_AFTER of its comparisons disagree
 * and they are at least FLAG_SHARE of them: a lowball reporter (every run low) or a forger (claims
 * low) or a saboteur (verifications high) shows up; one unlucky run does not. Claims are compared
 * too: that is where a forger's numbers are.
 */
export const Z = 2.25
export const FLAG_AFTER = 2
export const FLAG_SHARE = 0.25

export interface ContributorRun {
  commit: string
  cls: string
  valBpb: number
  contributorId: string
  claim: boolean
}

export interface ContributorStanding {
  contributorId: string
  /** Commits compared with other contributors' runs of them. */
  compared: number
  disagreements: number
  /** Of those, how many were the contributor's own claims. */
  claimDisagreements: number
  /** Mean of d over the comparisons, in σ: negative means their numbers run low (look better). */
  meanDifferenceSigma: number
  flagged: boolean
  /** What to look at, in words, when flagged. */
  note: string | null
}

/**
 * `sigmaOf(cls, k)`: the class's noise floor from every run but contributor k's. A contributor
 * whose numbers are off sits in many groups and inflates σ; judged against σ without its own runs,
 * it cannot hide behind the noise it makes.
 */
export function compareContributors(runs: readonly ContributorRun[], sigmaOf: (cls: string, without: string) => number): ContributorStanding[] {
  const byCommit = new Map<string, ContributorRun[]>()
  for (const r of runs) {
    if (!(Number.isFinite(r.valBpb) && r.valBpb > 0)) continue
    const key = `${r.cls}\0${r.commit}`
    byCommit.set(key, [...(byCommit.get(key) ?? []), r])
  }
  const stats = new Map<string, { compared: number; disagreements: number; claims: number; sum: number }>()
  const all = new Set(runs.map(r => r.contributorId))
  for (const id of all) stats.set(id, { compared: 0, disagreements: 0, claims: 0, sum: 0 })
  for (const group of byCommit.values()) {
    for (const k of new Set(group.map(r => r.contributorId))) {
      const sigma = sigmaOf(group[0].cls, k)
      const mine = group.filter(r => r.contributorId === k)
      const others = group.filter(r => r.contributorId !== k)
      if (!others.length || !(sigma > 0)) continue
      const byOther = new Map<string, ContributorRun[]>()
      for (const r of others) byOther.set(r.contributorId, [...(byOther.get(r.contributorId) ?? []), r])
      if (byOther.size < 2) continue
      const d = avg(mine) - median([...byOther.values()].map(avg))
      const s = stats.get(k)!
      s.compared++
      s.sum += d / sigma
      const apart = (j: ContributorRun[]) => Math.abs(avg(mine) - avg(j)) > Z * sigma * Math.sqrt(1 / mine.length + 1 / j.length)
      if ([...byOther.values()].every(apart)) {
        s.disagreements++
        if (mine.some(r => r.claim)) s.claims++
      }
    }
  }
  return [...stats].map(([contributorId, s]) => {
    const flagged = s.disagreements >= FLAG_AFTER && s.disagreements >= FLAG_SHARE * s.compared
    const mean = s.compared ? s.sum / s.compared : 0
    return {
      contributorId, compared: s.compared, disagreements: s.disagreements, claimDisagreements: s.claims, meanDifferenceSigma: mean, flagged,
      note: flagged ? `${s.disagreements} of ${s.compared} commits disagree with other contributors' runs beyond noise (their numbers run ${mean < 0 ? 'low' : 'high'} by ${Math.abs(mean).toFixed(1)}σ on average): check their runs before trusting them` : null,
    }
  }).sort((a, b) => Number(b.flagged) - Number(a.flagged) || b.disagreements - a.disagreements || a.contributorId.localeCompare(b.contributorId))
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}

function avg(rs: readonly ContributorRun[]): number {
  return rs.reduce((s, r) => s + r.valBpb, 0) / rs.length
}

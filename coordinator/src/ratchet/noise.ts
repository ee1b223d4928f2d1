import { isCandidate, type UnitKind } from '@autoresearch-grid/shared'
import { pooledSd, robustPooledSd } from './stats.ts'

/**
 * The noise floor σ of val_bpb for one campaign on one hardware class: how much two runs of the
 * same code differ (seeds, nondeterministic kernels, thermal state). It is estimated from repeated
 * measurements of the same commit — baselines of a best, verifications of a candidate — so
 * differences between commits never inflate it.
 *
 * The estimate is robust (stats.ts, robustPooledSd: the median of within-commit pairwise
 * differences), because any contributor may report any number: with the pooled sd one
 * verification of 4.0 among runs of 1.8 set σ to 0.449 and froze the class. A median can be
 * dragged the other way by one commit with many identical runs (a pair of colluders re-running
 * their own commit), so σ never drops below HISTORY_FLOOR_FRACTION of the class's typical
 * per-commit spread: the (lower) median, over the commits measured at least twice, of each one's own
 * robust sd. One commit is one vote there, however many runs it has.
 *
 * Only runs that nobody chose count: baselines and verifications. The run an exploration reports
 * is the candidate's claim: it is verified *because* it looked good (so it sits far from the
 * verifications more often than chance), and it may be forged; either way it would inflate σ and
 * blunt every later decision (docs/RATCHET.md, "Forged results").
 *
 * Until the data holds at least MIN_DEGREES_OF_FREEDOM repeats, the campaign spec's prior σ is
 * used instead. A "repeat" is every measurement of a commit beyond its first on that class, so
 * the count is the pooled estimate's degrees of freedom, Σ (nᵢ − 1): three measurements of one
 * commit give 2; two measurements each of three commits give 3. Three is a compromise: an estimate
 * below half the true σ would make the ratchet trust luck, and that happens 38 % of the time with
 * 1 degree of freedom, 22 % with 2, 14 % with 3; the scheduler's 4 baseline runs of the first best
 * reach 3 at once, and every verified candidate adds more.
 */
export const MIN_DEGREES_OF_FREEDOM = 3

/** σ is at least this share of the class's typical per-commit spread (see above). */
export const HISTORY_FLOOR_FRACTION = 0.5

/** One row of the measurements table, as the ratchet needs it. */
export interface Measurement {
  commit: string
  hardwareClass: string
  valBpb: number
  /** The kind of unit that produced it; `explore` and `rebase` runs are claims and are left out. */
  kind?: UnitKind
}

const isClaim = (m: Measurement) => m.kind !== undefined && isCandidate(m.kind)

export interface NoiseFloor {
  /** The σ to use in decisions. */
  sigma: number
  source: 'measured' | 'prior'
  /** Σ (nᵢ − 1) over commits measured at least twice on the class. */
  degreesOfFreedom: number
  /** Commits that contributed repeats. */
  commits: number
  /** The robust estimate even while the prior is in use (null when there are no repeats at all). */
  measuredSigma: number | null
  /** The classical pooled sd, for comparison on the dashboard (null without repeats). */
  pooledSigma: number | null
  /** The floor from the class's history (0 without repeats). */
  floor: number
}

export function noiseFloor(
  measurements: readonly Measurement[],
  hardwareClass: string,
  priorSigma: number,
  minDegreesOfFreedom: number = MIN_DEGREES_OF_FREEDOM,
): NoiseFloor {
  const byCommit = new Map<string, number[]>()
  for (const m of measurements) {
    // A crashed or rejected run says nothing about run-to-run spread of a working one.
    if (m.hardwareClass !== hardwareClass || isClaim(m) || !Number.isFinite(m.valBpb) || m.valBpb <= 0) continue
    const group = byCommit.get(m.commit)
    if (group) group.push(m.valBpb)
    else byCommit.set(m.commit, [m.valBpb])
  }
  return noiseFloorOfGroups([...byCommit.values()], priorSigma, minDegreesOfFreedom)
}

/**
 * The same rule over samples already grouped by commit (one class): for callers that keep groups
 * in memory, like the simulation.
 */
export function noiseFloorOfGroups(
  groups: readonly (readonly number[])[],
  priorSigma: number,
  minDegreesOfFreedom: number = MIN_DEGREES_OF_FREEDOM,
): NoiseFloor {
  if (!(Number.isFinite(priorSigma) && priorSigma > 0)) throw new RangeError(`priorSigma must be a positive number, got ${priorSigma}`)
  const robust = robustPooledSd(groups)
  const df = robust?.degreesOfFreedom ?? 0
  const perCommit = groups.filter(g => g.length >= 2).map(g => robustPooledSd([g])!.sd)
  // The lower median: a floor guards against σ too small, so of two middle values it takes the smaller.
  const floor = perCommit.length ? HISTORY_FLOOR_FRACTION * perCommit.sort((a, b) => a - b)[(perCommit.length - 1) >> 1] : 0
  const estimate = robust === undefined ? undefined : Math.max(robust.sd, floor)
  const measured = estimate !== undefined && df >= minDegreesOfFreedom
  return {
    sigma: measured ? estimate : priorSigma,
    source: measured ? 'measured' : 'prior',
    degreesOfFreedom: df,
    commits: robust?.groups ?? 0,
    measuredSigma: estimate ?? null,
    pooledSigma: pooledSd(groups)?.sd ?? null,
    floor,
  }
}

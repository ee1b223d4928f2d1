/**
 * The few statistics the ratchet needs, written out so every number in a decision can be checked
 * by hand. Empty inputs are programming errors here (the callers decide what "no data" means), so
 * they throw instead of returning NaN that would silently poison a comparison.
 */

export function mean(xs: readonly number[]): number {
  if (xs.length === 0) throw new RangeError('mean of an empty list')
  let sum = 0
  for (const x of xs) sum += x
  return sum / xs.length
}

/** Sum of squared deviations from the mean: the building block of sd and pooled sd. */
function sumOfSquares(xs: readonly number[]): number {
  const m = mean(xs)
  let ss = 0
  for (const x of xs) ss += (x - m) ** 2
  return ss
}

/** Sample standard deviation (n − 1 in the denominator). */
export function sampleSd(xs: readonly number[]): number {
  if (xs.length < 2) throw new RangeError(`a sample sd needs at least 2 values, got ${xs.length}`)
  return Math.sqrt(sumOfSquares(xs) / (xs.length - 1))
}

export interface PooledSd {
  /** √(Σ (nᵢ − 1)·sᵢ² / Σ (nᵢ − 1)) over the groups with at least two values. */
  sd: number
  /** Σ (nᵢ − 1): how many repeats the estimate rests on. */
  degreesOfFreedom: number
  /** Groups that contributed (those with at least two values). */
  groups: number
}

/**
 * Pooled standard deviation of groups that each repeat one quantity (one commit measured several
 * times): differences between groups (better or worse code) do not count, only the spread within
 * a group. Single-value groups carry no information about spread and are skipped; with no usable
 * group the result is undefined.
 */
export function pooledSd(groups: readonly (readonly number[])[]): PooledSd | undefined {
  let ss = 0
  let df = 0
  let used = 0
  for (const g of groups) {
    if (g.length < 2) continue
    ss += sumOfSquares(g)
    df += g.length - 1
    used++
  }
  if (df === 0) return undefined
  return { sd: Math.sqrt(ss / df), degreesOfFreedom: df, groups: used }
}

/**
 * erfc(x) for x ≥ 0: the power series of erf while it is accurate (x < 3, where it loses at most
 * a few of double precision's 16 digits to cancellation), then the continued fraction
 * erfc(x) = e^(−x²)/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + …)))), evaluated bottom-up.
 */
function erfcNonNegative(x: number): number {
  if (x < 3) {
    let term = x
    let sum = x
    for (let n = 1; n < 200; n++) {
      term *= (-x * x) / n
      const next = term / (2 * n + 1)
      sum += next
      if (Math.abs(next) < 1e-17 * Math.abs(sum)) break
    }
    return 1 - (2 / Math.sqrt(Math.PI)) * sum
  }
  let tail = x
  for (let k = 60; k >= 1; k--) tail = x + k / 2 / tail
  return Math.exp(-x * x) / Math.sqrt(Math.PI) / tail
}

/** Standard normal cumulative distribution Φ(x). */
export function normalCdf(x: number): number {
  if (Number.isNaN(x)) return NaN
  const t = Math.abs(x) / Math.SQRT2
  const upperTail = 0.5 * erfcNonNegative(t)
  return x >= 0 ? 1 - upperTail : upperTail
}

/**
 * Inverse of Φ: the z with Φ(z) = p, e.g. normalQuantile(0.975) ≈ 1.96. Found by bisection, which
 * is slow by numerics standards (~100 Φ evaluations) but cannot diverge, and is called a handful of
 * times per decision at most.
 */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1)) throw new RangeError(`normalQuantile needs 0 < p < 1, got ${p}`)
  let lo = -40
  let hi = 40
  for (let i = 0; i < 200 && hi - lo > 1e-12; i++) {
    const mid = (lo + hi) / 2
    if (normalCdf(mid) < p) lo = mid
    else hi = mid
  }
  return (lo + hi) / 2
}

/** Φ⁻¹(3/4): the median of |N(0, 1)|, which turns a median absolute deviation into an sd. */
export const MEDIAN_ABS_NORMAL = 0.6744897501960817

export function median(xs: readonly number[]): number {
  if (xs.length === 0) throw new RangeError('median of an empty list')
  const s = [...xs].sort((a, b) => a - b)
  const mid = s.length >> 1
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2
}

/**
 * A robust counterpart of pooledSd: the median over every pair of values within a group of
 * |a − b|, scaled so that it estimates σ for normal noise (a − b ~ N(0, 2σ²), so the median of
 * |a − b| is √2·0.6745·σ). One wild value spoils only the pairs it is in, and the median ignores a
 * minority of spoiled pairs: with the pooled sd, one run of 4.0 next to runs of 1.8 made σ 0.449
 * and no candidate of the class could clear a threshold again. Pairs work for groups of two as well
 * as of ten (a residual from a group median would need a correction for each group size).
 * Degrees of freedom are reported as pooledSd's, Σ (nᵢ − 1), so the same minimum applies.
 */
export function robustPooledSd(groups: readonly (readonly number[])[]): PooledSd | undefined {
  const diffs: number[] = []
  let df = 0
  let used = 0
  for (const g of groups) {
    if (g.length < 2) continue
    for (let i = 0; i < g.length; i++) for (let j = i + 1; j < g.length; j++) diffs.push(Math.abs(g[i] - g[j]))
    df += g.length - 1
    used++
  }
  if (df === 0) return undefined
  return { sd: median(diffs) / (Math.SQRT2 * MEDIAN_ABS_NORMAL), degreesOfFreedom: df, groups: used }
}

import t from 'tap'
import { HISTORY_FLOOR_FRACTION, MIN_DEGREES_OF_FREEDOM, noiseFloor, type Measurement } from '../../src/ratchet/noise.ts'
import { MEDIAN_ABS_NORMAL } from '../../src/ratchet/stats.ts'

/** What the robust estimate makes of a median pairwise difference d. */
const fromPairs = (d: number) => d / (Math.SQRT2 * MEDIAN_ABS_NORMAL)

const H100 = 'h100-80g'
const m = (commit: string, valBpb: number, hardwareClass = H100): Measurement => ({ commit, hardwareClass, valBpb })
const PRIOR = 0.02

t.test('with no measurements the prior is used', async t => {
  t.same(noiseFloor([], H100, PRIOR), { sigma: PRIOR, source: 'prior', degreesOfFreedom: 0, commits: 0, measuredSigma: null, pooledSigma: null, floor: 0 })
})

t.test('the threshold is 3 degrees of freedom', async t => {
  t.equal(MIN_DEGREES_OF_FREEDOM, 3)
})

t.test('three runs of one commit (2 repeats) are not enough: prior', async t => {
  const f = noiseFloor([m('a', 1.571), m('a', 1.592), m('a', 1.5)], H100, PRIOR)
  t.equal(f.source, 'prior')
  t.equal(f.sigma, PRIOR)
  t.equal(f.degreesOfFreedom, 2)
  t.ok(f.measuredSigma! > 0.04, 'the estimate is still reported')
})

t.test('four runs of one commit (3 repeats) are enough: measured', async t => {
  const f = noiseFloor([m('a', 1.0), m('a', 1.02), m('a', 0.98), m('a', 1.0)], H100, PRIOR)
  t.equal(f.source, 'measured')
  t.equal(f.degreesOfFreedom, 3)
  // Pairwise differences 0.02, 0.02, 0, 0.04, 0.02, 0.02: median 0.02.
  t.ok(Math.abs(f.sigma - fromPairs(0.02)) < 1e-12)
  t.ok(Math.abs(f.pooledSigma! - Math.sqrt(0.0008 / 3)) < 1e-12, 'the classical pooled sd is reported beside it')
})

t.test('two runs each of three commits give 3 degrees of freedom, pooled', async t => {
  const f = noiseFloor([m('a', 1.0), m('a', 1.02), m('b', 0.9), m('b', 0.92), m('c', 0.8), m('c', 0.82)], H100, PRIOR)
  t.equal(f.source, 'measured')
  t.equal(f.commits, 3)
  t.ok(Math.abs(f.sigma - fromPairs(0.02)) < 1e-12)
})

t.test('differences between commits do not count as noise', async t => {
  const f = noiseFloor([m('a', 1.0), m('a', 1.0), m('b', 0.5), m('b', 0.5), m('c', 2), m('c', 2)], H100, PRIOR)
  t.equal(f.sigma, 0)
})

t.test('single runs of many commits carry no information about noise', async t => {
  const f = noiseFloor(['a', 'b', 'c', 'd', 'e'].map((c, i) => m(c, 1 + i / 10)), H100, PRIOR)
  t.equal(f.source, 'prior')
  t.equal(f.degreesOfFreedom, 0)
})

t.test('measurements on other hardware classes are ignored', async t => {
  const f = noiseFloor([m('a', 1.0, 'rtx4090-24g'), m('a', 1.3, 'rtx4090-24g'), m('a', 1.1, 'rtx4090-24g'), m('a', 1.2, 'rtx4090-24g')], H100, PRIOR)
  t.equal(f.source, 'prior')
})

t.test('non-finite and non-positive values are ignored', async t => {
  const f = noiseFloor([m('a', 1.0), m('a', NaN), m('a', -1), m('a', 0), m('a', Infinity), m('a', 1.0)], H100, PRIOR)
  t.equal(f.degreesOfFreedom, 1)
})

t.test('the minimum degrees of freedom can be raised', async t => {
  const rows = [m('a', 1.0), m('a', 1.02), m('a', 0.98), m('a', 1.0)]
  t.equal(noiseFloor(rows, H100, PRIOR, 10).source, 'prior')
})

t.test('a prior that is not a positive number is a bug and throws', async t => {
  t.throws(() => noiseFloor([], H100, 0), RangeError)
  t.throws(() => noiseFloor([], H100, NaN), RangeError)
})

t.test("an exploration's own run (the claim) does not count toward σ", async t => {
  const rows: Measurement[] = [
    { ...m('c', 0.5), kind: 'explore' }, // a forged or lucky claim far from the rest
    { ...m('c', 1.0), kind: 'verify' },
    { ...m('c', 1.02), kind: 'verify' },
    { ...m('c', 0.98), kind: 'verify' },
    { ...m('c', 1.0), kind: 'verify' },
  ]
  const f = noiseFloor(rows, H100, PRIOR)
  t.equal(f.degreesOfFreedom, 3)
  t.ok(Math.abs(f.sigma - fromPairs(0.02)) < 1e-12, `σ ${f.sigma}`)
})

t.test('a rebase run is a claim too; baseline runs count', async t => {
  const rows: Measurement[] = [
    { ...m('a', 1.0), kind: 'baseline' },
    { ...m('a', 1.02), kind: 'baseline' },
    { ...m('a', 0.7), kind: 'rebase' },
  ]
  t.equal(noiseFloor(rows, H100, PRIOR).degreesOfFreedom, 1)
})

// Issue 15: σ is robust to outliers. With the pooled sd, one verification of 4.0 next to runs of
// 1.8 set σ to 0.449 and no candidate of the class could clear a threshold again.
t.test('one wild verification does not inflate σ (σ poisoning upwards)', async t => {
  const honest = [1.80, 1.81, 1.79, 1.80].map(v => ({ ...m('best', v), kind: 'baseline' as const }))
  const candidate = [1.78, 1.79, 1.77].map(v => ({ ...m('cand', v), kind: 'verify' as const }))
  const f = noiseFloor([...honest, ...candidate, { ...m('cand', 4.0), kind: 'verify' }], H100, PRIOR)
  t.equal(f.source, 'measured')
  t.ok(f.pooledSigma! > 0.4, `the pooled sd is poisoned: ${f.pooledSigma}`)
  t.ok(f.sigma < 0.03, `the robust σ is not: ${f.sigma}`)
})

t.test('many identical runs of one commit do not drag σ below the floor from the class history (σ poisoning downwards)', async t => {
  // Three commits measured honestly twice each (spread 0.02), then one commit re-run twenty times
  // with the same number: 190 zero differences against 3 honest ones.
  const rows = [m('a', 1.0), m('a', 1.02), m('b', 0.9), m('b', 0.92), m('c', 0.8), m('c', 0.82), ...Array.from({ length: 20 }, () => m('d', 0.7))]
  const f = noiseFloor(rows, H100, PRIOR)
  t.equal(f.source, 'measured')
  // Per-commit spreads: fromPairs(0.02) three times and 0: their median is fromPairs(0.02).
  t.ok(Math.abs(f.floor - HISTORY_FLOOR_FRACTION * fromPairs(0.02)) < 1e-12, `floor ${f.floor}`)
  t.equal(f.sigma, f.floor, 'σ is held at the floor, not 0')
})

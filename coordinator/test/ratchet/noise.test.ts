import t from 'tap'
import { MIN_DEGREES_OF_FREEDOM, noiseFloor, type Measurement } from '../../src/ratchet/noise.ts'

const H100 = 'h100-80g'
const m = (commit: string, valBpb: number, hardwareClass = H100): Measurement => ({ commit, hardwareClass, valBpb })
const PRIOR = 0.02

t.test('with no measurements the prior is used', async t => {
  t.same(noiseFloor([], H100, PRIOR), { sigma: PRIOR, source: 'prior', degreesOfFreedom: 0, commits: 0, measuredSigma: null })
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
  t.ok(Math.abs(f.sigma - Math.sqrt(0.0008 / 3)) < 1e-12)
})

t.test('two runs each of three commits give 3 degrees of freedom, pooled', async t => {
  const f = noiseFloor([m('a', 1.0), m('a', 1.02), m('b', 0.9), m('b', 0.92), m('c', 0.8), m('c', 0.82)], H100, PRIOR)
  t.equal(f.source, 'measured')
  t.equal(f.commits, 3)
  t.ok(Math.abs(f.sigma - Math.sqrt(0.0002 * 3 / 3)) < 1e-12)
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
  t.ok(f.sigma < 0.02, `σ ${f.sigma}`)
})

t.test('a rebase run is a claim too; baseline runs count', async t => {
  const rows: Measurement[] = [
    { ...m('a', 1.0), kind: 'baseline' },
    { ...m('a', 1.02), kind: 'baseline' },
    { ...m('a', 0.7), kind: 'rebase' },
  ]
  t.equal(noiseFloor(rows, H100, PRIOR).degreesOfFreedom, 1)
})

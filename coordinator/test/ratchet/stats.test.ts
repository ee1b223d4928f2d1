import t from 'tap'
import { mean, normalCdf, normalQuantile, pooledSd, sampleSd } from '../../src/ratchet/stats.ts'

const near = (a: number, b: number, tol = 1e-9) => Math.abs(a - b) <= tol

t.test('mean', async t => {
  t.test('is the arithmetic mean', async t => {
    t.equal(mean([1, 2, 3, 6]), 3)
  })
  t.test('of an empty list throws', async t => {
    t.throws(() => mean([]), RangeError)
  })
})

t.test('sampleSd', async t => {
  t.test('divides by n − 1', async t => {
    // deviations −1, 0, +1: sum of squares 2, over n − 1 = 2 → sd 1
    t.equal(sampleSd([4, 5, 6]), 1)
  })
  t.test('of the H100 seeds 1.571 / 1.592 / 1.500 is about 0.048', async t => {
    t.ok(near(sampleSd([1.571, 1.592, 1.5]), 0.04822, 1e-5))
  })
  t.test('needs at least two values', async t => {
    t.throws(() => sampleSd([1]), RangeError)
  })
})

t.test('pooledSd', async t => {
  t.test('weights each group by its degrees of freedom', async t => {
    // group a: ss 2, df 2; group b: ss 8, df 1 → √(10 / 3)
    const p = pooledSd([[4, 5, 6], [1, 5]])!
    t.ok(near(p.sd, Math.sqrt(10 / 3)))
    t.equal(p.degreesOfFreedom, 3)
    t.equal(p.groups, 2)
  })
  t.test('ignores differences between groups', async t => {
    t.equal(pooledSd([[1, 1], [9, 9]])!.sd, 0)
  })
  t.test('skips single-value groups', async t => {
    t.same(pooledSd([[4, 5, 6], [100]]), { sd: 1, degreesOfFreedom: 2, groups: 1 })
  })
  t.test('is undefined without any repeated value', async t => {
    t.equal(pooledSd([[1], [2], []]), undefined)
  })
})

t.test('normalCdf', async t => {
  t.test('matches tabulated values', async t => {
    t.ok(near(normalCdf(0), 0.5, 1e-15))
    t.ok(near(normalCdf(1), 0.8413447460685429, 1e-12))
    t.ok(near(normalCdf(1.959963984540054), 0.975, 1e-12))
    t.ok(near(normalCdf(-3), 0.0013498980316301, 1e-13))
    t.ok(near(normalCdf(-5), 2.866515718791939e-7, 1e-16))
  })
  t.test('is continuous where the method switches (|x| = 3·√2)', async t => {
    const x = 3 * Math.SQRT2
    t.ok(near(normalCdf(-x + 1e-9), normalCdf(-x - 1e-9), 1e-12))
  })
  t.test('is symmetric', async t => {
    for (const x of [0.3, 1.7, 2.9, 4.4, 6]) t.ok(near(normalCdf(x) + normalCdf(-x), 1, 1e-14), `x = ${x}`)
  })
})

t.test('normalQuantile', async t => {
  t.test('inverts normalCdf', async t => {
    t.ok(near(normalQuantile(0.975), 1.959963984540054, 1e-9))
    t.ok(near(normalQuantile(0.5), 0, 1e-9))
    t.ok(near(normalQuantile(0.05), -1.6448536269514722, 1e-9))
  })
  t.test('needs 0 < p < 1', async t => {
    t.throws(() => normalQuantile(0), RangeError)
    t.throws(() => normalQuantile(1), RangeError)
  })
})

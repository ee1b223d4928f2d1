import t from 'tap'
import { createRng } from '../src/random.ts'

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length
function sampleSd(xs: number[]): number {
  const m = mean(xs)
  return Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1))
}

const draw = (n: number, f: () => number) => Array.from({ length: n }, f)

t.test('the same seed gives the same sequence', async t => {
  const a = createRng(42)
  const b = createRng(42)
  t.same(draw(100, () => a.next()), draw(100, () => b.next()))
})

t.test('neighbouring seeds give unrelated sequences', async t => {
  const a = draw(50, createRng(1).next)
  const b = draw(50, createRng(2).next)
  t.ok(a.every((x, i) => x !== b[i]))
})

t.test('uniform draws lie in [0, 1) with mean ½', async t => {
  const xs = draw(20000, createRng(7).next)
  t.ok(xs.every(x => x >= 0 && x < 1))
  t.ok(Math.abs(mean(xs) - 0.5) < 0.01)
})

t.test('normal draws have the requested mean and sd', async t => {
  const rng = createRng(11)
  const xs = draw(20000, () => rng.normal(1.5, 0.038))
  t.ok(Math.abs(mean(xs) - 1.5) < 0.002, `mean ${mean(xs)}`)
  t.ok(Math.abs(sampleSd(xs) / 0.038 - 1) < 0.03, `sd ${sampleSd(xs)}`)
})

t.test('int(n) covers 0 … n − 1 and nothing else', async t => {
  const rng = createRng(3)
  const seen = new Set(draw(1000, () => rng.int(6)))
  t.same([...seen].sort(), [0, 1, 2, 3, 4, 5])
})

t.test('chance(p) is true about p of the time', async t => {
  const rng = createRng(5)
  const share = draw(20000, () => (rng.chance(0.3) ? 1 : 0)).reduce((a, b) => a + b) / 20000
  t.ok(Math.abs(share - 0.3) < 0.015)
})

t.test('a non-finite seed throws', async t => {
  t.throws(() => createRng(NaN), RangeError)
})

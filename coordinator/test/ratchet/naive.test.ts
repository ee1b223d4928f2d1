import t from 'tap'
import { decideNaive } from '../../src/ratchet/naive.ts'

t.test('a run below the best’s recorded number is kept', async t => {
  t.same(decideNaive(0.99, 1.0), { kind: 'merge', delta: 0.99 - 1.0 })
})

t.test('a run equal to the best’s number is discarded', async t => {
  t.equal(decideNaive(1.0, 1.0).kind, 'discard')
})

t.test('a worse run is discarded', async t => {
  t.same(decideNaive(1.01, 1.0), { kind: 'discard', delta: 1.01 - 1.0 })
})

t.test('a non-finite run is rejected', async t => {
  t.same(decideNaive(NaN, 1.0), { kind: 'reject', reason: 'non-finite-metric' })
  t.same(decideNaive(-Infinity, 1.0), { kind: 'reject', reason: 'non-finite-metric' })
})

t.test('a non-positive run is rejected', async t => {
  t.same(decideNaive(0, 1.0), { kind: 'reject', reason: 'non-positive-metric' })
})

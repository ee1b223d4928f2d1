import t from 'tap'
import { decideNaive, naiveResultStatus } from '../src/naive-ratchet.ts'

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

t.test('no run is a rejection: solo records a missing number as a crash', async t => {
  t.same(decideNaive(null, 1.0), { kind: 'reject', reason: 'non-finite-metric' })
  t.equal(naiveResultStatus(decideNaive(null, 1.0)), 'crash')
})

t.test('with no best yet, any sane run is kept', async t => {
  t.same(decideNaive(1.2, null), { kind: 'merge', delta: null })
})

t.test('a run must beat the best by more than minDelta to be kept', async t => {
  t.equal(decideNaive(0.98, 0.99, 0.005).kind, 'merge')
  t.equal(decideNaive(0.985, 0.99, 0.01).kind, 'discard')
})

t.test('decisions read as results.tsv statuses', async t => {
  t.equal(naiveResultStatus(decideNaive(0.98, 0.99)), 'keep')
  t.equal(naiveResultStatus(decideNaive(0.99, 0.99)), 'discard')
  t.equal(naiveResultStatus(decideNaive(Number.NaN, 0.99)), 'crash')
})

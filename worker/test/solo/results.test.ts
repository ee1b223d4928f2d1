import t from 'tap'
import { decide, formatRow, HEADER, parseResults, summarize } from '../../src/solo/results.ts'

t.test('rows are written and read in the autoresearch format', async t => {
  const row = { commit: 'a1b2c3d4e5', valBpb: 0.9979, memoryGb: 44.0, status: 'keep' as const, description: 'baseline\twith a tab' }
  t.equal(formatRow(row), 'a1b2c3d\t0.997900\t44.0\tkeep\tbaseline with a tab')
  t.same(parseResults(`${HEADER}\n${formatRow(row)}\n`), [{ ...row, commit: 'a1b2c3d', description: 'baseline with a tab' }])
})

t.test('the best is the lowest kept val_bpb; what was tried since the last keep is remembered', async t => {
  const rows = parseResults([HEADER, 'a\t1.000000\t1.0\tkeep\tbaseline', 'b\t0.990000\t1.0\tkeep\tup', 'c\t0.995000\t1.0\tdiscard\tdown', 'd\t0.000000\t0.0\tcrash\tboom'].join('\n'))
  t.same(summarize(rows), { best: 0.99, triedSinceBest: ['down', 'boom'] })
})

t.test('an experiment is kept only when it beats the best by more than minDelta', async t => {
  t.equal(decide(0.98, 0.99), 'keep')
  t.equal(decide(0.99, 0.99), 'discard')
  t.equal(decide(0.985, 0.99, 0.01), 'discard')
  t.equal(decide(null, 0.99), 'crash')
  t.equal(decide(Number.NaN, 0.99), 'crash')
  t.equal(decide(1.2, null), 'keep')
})

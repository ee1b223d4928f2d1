import t from 'tap'
import { parseResultsTsv, RESULTS_TSV_HEADER } from '@autoresearch-grid/shared'
import { summarize } from '../../src/solo/results.ts'

t.test('the best is the lowest kept val_bpb; what was tried since the last keep is remembered', async t => {
  const rows = parseResultsTsv([RESULTS_TSV_HEADER, 'a\t1.000000\t1.0\tkeep\tbaseline', 'b\t0.990000\t1.0\tkeep\tup', 'c\t0.995000\t1.0\tdiscard\tdown', 'd\t0.000000\t0.0\tcrash\tboom'].join('\n'))
  t.same(summarize(rows), { best: 0.99, triedSinceBest: ['down', 'boom'] })
})

t.test('with no keep yet there is no best, and everything was tried since', async t => {
  const rows = parseResultsTsv([RESULTS_TSV_HEADER, 'a\t0.000000\t0.0\tcrash\tboom'].join('\n'))
  t.same(summarize(rows), { best: null, triedSinceBest: ['boom'] })
})

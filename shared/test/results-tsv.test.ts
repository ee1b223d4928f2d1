import t from 'tap'
import { formatResultRow, parseResultsTsv, RESULTS_TSV_HEADER, resultStatus, toResultsTsv } from '../src/results-tsv.ts'

t.test('results.tsv round-trips rows in the autoresearch format', async t => {
  const rows = [
    { commit: 'a1b2c3d', valBpb: 0.9979, memoryGb: 44.0, status: 'keep' as const, description: 'baseline' },
    { commit: 'b2c3d4e', valBpb: null, memoryGb: 0, status: 'crash' as const, description: 'double the width\t(OOM)' },
  ]
  const text = toResultsTsv(rows)
  t.equal(text.split('\n')[0], 'commit\tval_bpb\tmemory_gb\tstatus\tdescription')
  t.same(parseResultsTsv(text), [rows[0], { ...rows[1], description: 'double the width (OOM)' }])
})

t.test('a row has the short commit, six decimals of val_bpb, one of memory, and one line of description', async t => {
  const row = { commit: 'a1b2c3d4e5', valBpb: 0.9979, memoryGb: 44.0, status: 'keep' as const, description: 'baseline\twith a tab\nand a line' }
  t.equal(formatResultRow(row), 'a1b2c3d\t0.997900\t44.0\tkeep\tbaseline with a tab and a line')
})

t.test('a crash is written with zeros, as autoresearch writes it, and read back with no number', async t => {
  const line = formatResultRow({ commit: 'abcdef0', valBpb: 1.7, memoryGb: 3.2, status: 'crash', description: 'boom' })
  t.equal(line, 'abcdef0\t0.000000\t0.0\tcrash\tboom')
  t.same(parseResultsTsv(`${RESULTS_TSV_HEADER}\n${line}\n`)[0], { commit: 'abcdef0', valBpb: null, memoryGb: 0, status: 'crash', description: 'boom' })
})

t.test('blank lines and Windows line ends are read; extra columns stay in the description', async t => {
  const rows = parseResultsTsv(`${RESULTS_TSV_HEADER}\r\n\r\na\t1.000000\t1.0\tdiscard\tlower lr\textra\r\n`)
  t.same(rows, [{ commit: 'a', valBpb: 1, memoryGb: 1, status: 'discard', description: 'lower lr extra' }])
})

t.test('a file that is not a results.tsv is refused with what it should look like', async t => {
  t.throws(() => parseResultsTsv('hello\tworld\n'), /first line must be "commit<TAB>val_bpb/)
  t.throws(() => parseResultsTsv(''), /first line must be/)
})

t.test('a malformed row is refused with its line number, never skipped', async t => {
  t.throws(() => parseResultsTsv(`${RESULTS_TSV_HEADER}\nabc\t1.0\t2\tmaybe\tx\n`), /line 2: status must be keep, discard or crash/)
  t.throws(() => parseResultsTsv(`${RESULTS_TSV_HEADER}\na\t1.0\t1.0\tkeep\tok\nb\tlow\t1.0\tkeep\tx\n`), /line 3: val_bpb and memory_gb must be numbers/)
})

t.test('experiment statuses map to keep, discard or crash; measurements are not listed', async t => {
  t.equal(resultStatus('kept'), 'keep')
  for (const s of ['discarded', 'stale']) t.equal(resultStatus(s), 'discard')
  for (const s of ['crash', 'rejected', 'rejected-unsafe']) t.equal(resultStatus(s), 'crash')
  for (const s of ['measured', 'pending', 'merging', 'awaiting-review']) t.equal(resultStatus(s), null)
})

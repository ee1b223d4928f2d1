import t from 'tap'
import { execa } from 'execa'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseResultsTsv, toResultsTsv } from '../../src/campaigns/results-tsv.ts'

const cli = fileURLToPath(new URL('../../bin/coordinator.mjs', import.meta.url))

t.test('results.tsv round-trips rows in the autoresearch format', async t => {
  const rows = [
    { commit: 'a1b2c3d', valBpb: 0.9979, memoryGb: 44.0, status: 'keep' as const, description: 'baseline' },
    { commit: 'b2c3d4e', valBpb: null, memoryGb: 0, status: 'crash' as const, description: 'double the width\t(OOM)' },
  ]
  const text = toResultsTsv(rows)
  t.equal(text.split('\n')[0], 'commit\tval_bpb\tmemory_gb\tstatus\tdescription')
  t.same(parseResultsTsv(text), [rows[0], { ...rows[1], description: 'double the width (OOM)' }])
})

t.test('a file that is not a results.tsv is refused with what it should look like', async t => {
  t.throws(() => parseResultsTsv('hello\tworld\n'), /first line must be "commit<TAB>val_bpb/)
  t.throws(() => parseResultsTsv('commit\tval_bpb\tmemory_gb\tstatus\tdescription\nabc\t1.0\t2\tmaybe\tx\n'), /line 2: status must be keep, discard or crash/)
})

t.test('import starts a campaign from a solo run and export lists its experiments', async t => {
  const dir = await mkdtemp(join(tmpdir(), 'arg-cli-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  await writeFile(join(dir, 'results.tsv'), 'commit\tval_bpb\tmemory_gb\tstatus\tdescription\na1b2c3d\t0.997900\t44.0\tkeep\tbaseline\nb2c3d4e\t1.005000\t44.2\tdiscard\tswitch to GeLU\n')
  await writeFile(join(dir, 'train.py'), 'DEPTH = 8\n')
  const run = (...args: string[]) => execa(process.execPath, [cli, '--data', join(dir, 'data'), ...args])
  const imported = await run('import', 'solo', '--tsv', join(dir, 'results.tsv'), '--train-py', join(dir, 'train.py'), '--profile', 'cpu-tiny', '--budget', '5')
  t.match(imported.stdout, /2 ideas .* recorded as already tried/)
  t.equal((await run('export', 'solo', '--tsv')).stdout.trim(), 'commit\tval_bpb\tmemory_gb\tstatus\tdescription', 'no experiments yet, only the header')
  const bad = await execa(process.execPath, [cli, '--data', join(dir, 'data'), 'export', 'nope', '--tsv'], { reject: false })
  t.equal(bad.exitCode, 2)
  t.match(bad.stderr, /no campaign "nope"/)
})

import t from 'tap'
import { execa } from 'execa'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { coordinatorCli as cli } from '../../../shared/test/support/cli.ts'


// The codec itself is specified in shared/test/results-tsv.test.ts; this is the CLI around it.
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

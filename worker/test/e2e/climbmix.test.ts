import t from 'tap'
import { execa } from 'execa'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { findPython } from '@autoresearch-grid/trainer'
import { coordinatorCli, workerCli } from '../../../shared/test/support/cli.ts'

// climbmix end to end: real parquet shards in the public layout (shard_00000.parquet … and the
// pinned validation shard_06542.parquet), made here with pyarrow and served by a local stand-in
// for the host (trainer/tests/shard_server.py) that drops the first transfer of a shard half-way.
// The coordinator prepares the campaign from it, a worker downloads the shards itself, resumes the
// cut one and trains. Needs a trainer Python with pyarrow (AUTORESEARCH_PYTHON); Debian 12 has no
// python3-pyarrow, so elsewhere this is skipped and campaign-data.test.ts covers the refusal.
const root = fileURLToPath(new URL('../../../', import.meta.url))
const python = (await findPython()).path
const skip = (await execa(python, ['-c', 'import pyarrow'], { reject: false })).exitCode === 0 ? false : `${python} has no pyarrow (pip install pyarrow, then AUTORESEARCH_PYTHON=that python)`

const MAKE_SHARDS = `
import random, sys
from pathlib import Path
import pyarrow as pa, pyarrow.parquet as pq
rng = random.Random(5)
syl = ["ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "be", "da", "fi", "go"]
words = ["".join(rng.choice(syl) for _ in range(rng.randint(1, 3))) for _ in range(250)]
out = Path(sys.argv[1]); out.mkdir(parents=True)
for shard in (0, 6542):
    docs = [" ".join(rng.choice(words) for _ in range(rng.randint(150, 300))) + "." for _ in range(150)]
    pq.write_table(pa.table({"text": docs}), out / f"shard_{shard:05d}.parquet")
`

t.test('a climbmix campaign: the coordinator and a worker download real parquet shards from a local host, resume a cut one, and train', { skip }, async t => {
  const dir = await mkdtemp(join(tmpdir(), 'arg-climbmix-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  await execa(python, ['-c', MAKE_SHARDS, join(dir, 'shards')])
  const host = execa(python, [join(root, 'trainer/tests/shard_server.py'), join(dir, 'shards'), '--cut', 'shard_00000.parquet:20000'], { reject: false })
  t.teardown(() => { host.kill('SIGKILL') })
  let log = ''
  const url = await new Promise<string>(resolve => host.stdout!.on('data', (b: Buffer) => {
    log += String(b)
    const m = /url: (\S+)/.exec(log)
    if (m) resolve(m[1])
  }))
  const env = { AUTORESEARCH_CLIMBMIX_URL: url, AUTORESEARCH_DOWNLOAD_RETRY_BASE: '0.1' }
  const data = join(dir, 'coordinator')
  const cli = (...args: string[]) => execa(process.execPath, [coordinatorCli, '--data', data, ...args], { env, reject: false, all: true })
  const created = await cli('campaign', 'create', 'mix', '--source', 'climbmix', '--num-shards', '1', '--budget', '5', '--profile', 'cpu-tiny', '--vocab-size', '512',
    '--allow-self-verification', '--baseline-runs', '1')
  if (!t.equal(created.exitCode, 0, 'the coordinator prepares climbmix from the local host')) t.comment(created.all)
  t.match(created.stdout, /data: climbmix \(1 shard\)/)
  const token = (await cli('token', 'create', 'ann')).stdout.trim()

  const coord = execa(process.execPath, [coordinatorCli, '--data', data, 'start', '--port', '0'], { env, reject: false })
  const api = await new Promise<string>((resolve, reject) => {
    coord.stdout!.on('data', (b: Buffer) => { const m = /listening on (\S+)/.exec(String(b)); if (m) resolve(m[1]) })
    coord.on('exit', code => reject(new Error(`coordinator exited with ${code}`)))
  })
  const worker = execa(process.execPath, [workerCli, 'join', api, '--token', token, '--name', 'w-ann', '--state', join(dir, 'w-ann'), '--max-units', '2'],
    { env: { ...env, ANTHROPIC_API_KEY: '' }, reject: false, all: true })
  t.teardown(() => { worker.kill('SIGKILL'); coord.kill('SIGKILL') })
  const out = await worker
  coord.kill('SIGTERM')
  await coord
  t.equal(out.exitCode, 0, 'the worker trained its units and stopped')
  t.notMatch(out.all, /not taking work from mix/, 'it could prepare the campaign')
  const exported = await cli('export', 'mix', '--tsv')
  t.ok(exported.stdout.trim().split('\n').length >= 2, `experiments were recorded:\n${exported.stdout}`)
  const cutShard = log.split('\n').filter(r => r.startsWith('GET shard_00000.parquet'))
  t.ok(cutShard.some(r => /range=bytes=20000-/.test(r)), `a cut download resumed with a Range request (${cutShard.join('; ')})`)
})

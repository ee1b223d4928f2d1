import t from 'tap'
import { readFileSync } from 'node:fs'
import { execa, type ResultPromise } from 'execa'
import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { simpleGit } from 'simple-git'
import { createTRPCClient, httpLink } from '@trpc/client'
import type { AppRouter } from '@autoresearch-grid/coordinator'
import { until } from '../../../shared/test/support/until.ts'
import { coordinatorCli, workerCli } from '../../../shared/test/support/cli.ts'
import { linkCorpus, sharedCorpus } from '../fixtures/corpus.ts'

// The whole system as a user runs it: the real CLIs as separate processes, the real CPU trainer,
// loopback sockets, a SQLite file and a git store on disk.
async function startCoordinator(data: string): Promise<{ proc: ResultPromise; url: string }> {
  const proc = execa(process.execPath, [coordinatorCli, '--data', data, 'start', '--port', '0'], { reject: false })
  const url = await new Promise<string>((resolve, reject) => {
    proc.stdout!.on('data', (b: Buffer) => { const m = /listening on (\S+)/.exec(String(b)); if (m) resolve(m[1]) })
    proc.on('exit', code => reject(new Error(`coordinator exited with ${code}`)))
  })
  return { proc, url }
}


t.test('two real workers train on CPU, the branch advances only on improvements, and a restart keeps it all', async t => {
  const dir = await mkdtemp(join(tmpdir(), 'arg-e2e-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const data = join(dir, 'data')
  const cli = (...args: string[]) => execa(process.execPath, [coordinatorCli, '--data', data, ...args])
  // The suite's one prepared data set (fixtures/corpus.ts) stands in for the coordinator's and each
  // worker's preparation (tens of seconds of CPU each): the coordinator's and the workers' prepare
  // caches are that one, and the campaign pins its tokenizer. `campaign create` tokenizes the corpus
  // with it there once (the first run of the suite on a machine), the workers find it prepared.
  const corpus = await sharedCorpus()
  await mkdir(data)
  await symlink(corpus.cacheDir, join(data, 'prepare-cache'))
  for (const name of ['w-alice', 'w-bob']) await linkCorpus(join(dir, name, 'data', 'demo'))
  // Two contributors: each verifies the other's candidates (one verification; more would need more contributors).
  const created = await cli('campaign', 'create', 'demo', '--budget', '2', '--profile', 'cpu-tiny', '--tokenizer', corpus.tokenizerPath, '--replications', '1')
  t.match(created.stdout, /campaign demo created .*fingerprint [0-9a-f]{12}/, 'the campaign pins the fingerprint of its data set')
  const alice = (await cli('token', 'create', 'alice', '--email', 'alice@example.org')).stdout.trim()
  const bob = (await cli('token', 'create', 'bob', '--email', 'bob@example.org')).stdout.trim()

  let coord = await startCoordinator(data)
  const workers = [['w-alice', alice], ['w-bob', bob]].map(([name, token]) =>
    execa(process.execPath, [workerCli, 'join', coord.url, '--token', token, '--name', name, '--state', join(dir, name)], { reject: false, all: true }))
  t.teardown(() => { for (const w of workers) w.kill('SIGKILL'); coord.proc.kill('SIGKILL') })

  // As the maintainer: log tails are for their author and the maintainer only.
  const admin = () => readFileSync(join(data, 'admin.token'), 'utf8').trim()
  const api = () => createTRPCClient<AppRouter>({ links: [httpLink({ url: `${coord.url}/trpc`, headers: () => ({ authorization: `Bearer ${admin()}` }) })] })
  const reported = await until('4 experiments with metrics', async () => {
    const list = await api().dashboard.experiments.query({ campaign: 'demo', limit: 100 })
    const done = list.filter(e => e.valBpb !== null)
    return done.length >= 4 && list
  })
  for (const w of workers) w.kill('SIGTERM')
  const outputs = await Promise.all(workers)
  t.ok(outputs.every(o => /connected to/.test(o.all ?? '')), 'both workers connected')

  const experiments = await Promise.all(reported.map(e => api().dashboard.experiment.query({ id: e.id })))
  for (const e of experiments) {
    t.ok(e!.commit && e!.sourceHash, `${e!.id} stores its source as a commit`)
    t.ok(e!.metrics, `${e!.id} has metrics`)
    t.match(e!.logTail, /evaluation: \{"val_bpb": /, `${e!.id} keeps the log tail, with the trusted evaluator's line`)
    if (e!.kind === 'explore') t.match(e!.diff, /^[-+][A-Z_][A-Z0-9_]* = /m, `${e!.id} has a diff of train.py`)
  }
  t.ok(new Set(experiments.map(e => e!.workerId)).size === 2, 'both workers contributed')

  const git = simpleGit(join(data, 'git'))
  const branch = (await git.raw(['log', '--format=%H %an', 'autoresearch/demo'])).trim().split('\n').map(l => l.split(' '))
  const kept = experiments.filter(e => e!.status === 'kept')
  t.equal(branch.length, 1 + kept.length, 'the branch holds the seed and exactly the kept experiments')
  for (const [sha, author] of branch.slice(0, -1)) {
    const e = kept.find(k => k!.commit === sha)
    t.ok(e, `branch commit ${sha.slice(0, 8)} is a kept experiment`)
    t.equal(author, reported.find(r => r.id === e!.id)!.contributor, 'authored by the contributor whose experiment it is')
  }
  const bests = kept.map(k => k!.valBpb!).reverse()
  for (let i = 1; i < bests.length; i++) t.ok(bests[i] < bests[i - 1], 'each merge improved on the one before')

  coord.proc.kill('SIGTERM')
  await coord.proc
  coord = await startCoordinator(data)
  const after = await api().dashboard.experiments.query({ campaign: 'demo', limit: 100 })
  t.same(after.map(e => [e.id, e.valBpb, e.status]).sort(), reported.map(e => [e.id, e.valBpb, e.status]).sort(), 'a restart keeps every experiment')
  t.equal((await api().dashboard.campaign.query({ name: 'demo' }))!.bestCommit, (await git.raw(['rev-parse', 'autoresearch/demo'])).trim())
  coord.proc.kill('SIGTERM')
  await coord.proc
})

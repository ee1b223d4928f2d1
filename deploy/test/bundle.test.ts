import t from 'tap'
import { execa, type ResultPromise } from 'execa'
import { cp, mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { createTRPCClient, httpLink } from '@trpc/client'
import type { AppRouter } from '@autoresearch-grid/coordinator'
import { bundle } from '../../scripts/bundle.ts'
import { CORPUS_CAMPAIGN, CORPUS_VOCAB, linkCorpus } from '../../worker/test/fixtures/corpus.ts'

// The release as a user gets it: `pnpm bundle`, the folder copied somewhere with no node_modules
// above it, and only a plain `node` to run it. The child processes get a bare environment, so no
// loader (tap's NODE_OPTIONS) and no checkout path can help them find anything.
const python = process.env.AUTORESEARCH_PYTHON ?? '/usr/bin/python3'
const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? tmpdir(), LANG: 'C.UTF-8', AUTORESEARCH_PYTHON: python, LOG_LEVEL: 'warn' }

function noNodeModulesAbove(dir: string): boolean {
  for (let d = dir; ; d = dirname(d)) {
    if (existsSync(join(d, 'node_modules'))) return false
    if (dirname(d) === d) return true
  }
}

t.test('the bundles run from a folder with no node_modules: coordinator, campaign, a worker training one unit on CPU', async t => {
  const tmp = await mkdtemp(join(tmpdir(), 'arg-bundle-'))
  t.teardown(() => rm(tmp, { recursive: true, force: true }))
  const built = await bundle(join(tmp, 'build'))
  for (const f of ['coordinator.mjs', 'worker.mjs', 'better_sqlite3.node', 'trainer/prepare.py', 'trainer/train.py', 'trainer/evaluate.py', 'trainer/model_server.py', 'program.md', 'safety/check_train.py', 'web/index.html', 'vendor/uplot/uPlot.esm.js', 'drizzle/meta/_journal.json']) {
    t.ok(built.files.includes(f), `dist/${f} is in the bundle`)
  }
  // Moved after building: nothing may point back at where it was built.
  const rel = join(tmp, 'release')
  await cp(built.outDir, rel, { recursive: true })
  await rm(built.outDir, { recursive: true })
  t.ok(noNodeModulesAbove(rel), `no node_modules in ${rel} or above`)
  t.same((await readdir(join(rel, 'corpus'))).sort(), ['datasets-moby-dick', 'datasets-sotu'], 'the embedded corpus travels along')

  const node = (script: string, args: string[]) => execa(process.execPath, [join(rel, script), ...args], { cwd: rel, env, extendEnv: false, all: true, reject: false })
  const coordinator = (...args: string[]) => node('coordinator.mjs', ['--data', join(tmp, 'data'), ...args])

  const help = await coordinator('--help')
  t.equal(help.exitCode, 0, 'coordinator --help exits 0')
  t.match(help.stdout, /start \[options\]/)
  const workerHelp = await node('worker.mjs', ['join', '--help'])
  t.equal(workerHelp.exitCode, 0, 'worker join --help exits 0')
  t.match(workerHelp.stdout, /--max-units/)

  // Preparing the corpus costs tens of seconds of CPU, so the campaign pins no tokenizer and the
  // worker's data folder is the data set the worker tests share (prepared once). The bundle's
  // prepare.py still checks it with `--check`, which needs the corpus: only the bundle has one
  // (neither the working directory nor prepare.py's folder has node_modules above it).
  const created = await coordinator('campaign', 'create', CORPUS_CAMPAIGN, '--budget', '3', '--profile', 'cpu-tiny', '--vocab-size', String(CORPUS_VOCAB),
    '--baseline-runs', '1', '--allow-self-verification', '--no-prepare')
  t.equal(created.exitCode, 0, `campaign create: ${created.all}`)
  const token = (await coordinator('token', 'create', 'alice')).stdout.trim()
  t.match(token, /^arg_wrk_/)

  const server: ResultPromise = execa(process.execPath, [join(rel, 'coordinator.mjs'), '--data', join(tmp, 'data'), 'start', '--port', '0'], { cwd: rel, env, extendEnv: false, all: true, reject: false })
  t.teardown(() => { server.kill('SIGKILL') })
  const url = await new Promise<string>((resolve, reject) => {
    server.stdout!.on('data', (b: Buffer) => { const m = /listening on (\S+)/.exec(String(b)); if (m) resolve(m[1]) })
    void server.then(r => reject(new Error(`the coordinator exited: ${r.all}`)))
  })
  const page = await fetch(`${url}/`)
  t.equal(page.status, 200, 'the status page is served')
  t.match(await page.text(), /\/assets\/app\.js/)
  t.equal((await fetch(`${url}/assets/app.js`)).status, 200, 'its modules are served from the bundle')
  t.equal((await fetch(`${url}/vendor/uplot/uPlot.esm.js`)).status, 200, 'uPlot is served from the bundle')

  await linkCorpus(join(tmp, 'worker', 'data', CORPUS_CAMPAIGN))
  const worker = await node('worker.mjs', ['join', url, '--token', token, '--name', 'w-bundle', '--state', join(tmp, 'worker'), '--no-pipeline', '--max-units', '1'])
  t.equal(worker.exitCode, 0, `the worker stops after one unit: ${worker.all}`)
  t.match(worker.all, /researcher: heuristic/)

  // As the maintainer: log tails are for their author and the maintainer only.
  const admin = (await readFile(join(tmp, 'data', 'admin.token'), 'utf8')).trim()
  const api = createTRPCClient<AppRouter>({ links: [httpLink({ url: `${url}/trpc`, headers: () => ({ authorization: `Bearer ${admin}` }) })] })
  const stored = await api.dashboard.experiments.query({ campaign: CORPUS_CAMPAIGN, limit: 10 })
  t.equal(stored.length, 1, 'one experiment is stored')
  const e = await api.dashboard.experiment.query({ id: stored[0].id })
  t.ok(e && Number.isFinite(e.valBpb) && e.valBpb! > 0, `it has a val_bpb (${e?.valBpb})`)
  t.match(e!.logTail, /evaluation: \{"val_bpb": /, 'and the log tail, with the trusted evaluator\'s line')

  server.kill('SIGTERM')
  const stopped = await server
  t.equal(stopped.exitCode, 0, `the coordinator stops cleanly on SIGTERM: ${stopped.all}`)
})

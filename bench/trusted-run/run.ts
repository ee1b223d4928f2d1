// The trusted-measurement pipeline on a real machine, as a worker runs it: per experiment, train.py
// in the bubblewrap sandbox (training split only, stopped by the worker's clock), then the trusted
// evaluator with two sandboxed model servers. Prints one JSON line per run and a summary table:
// wall seconds, training seconds, evaluation seconds and the overhead (wall - budget) for
//   1. a baseline of the trainer's train.py (cold: empty compile cache; its entries become trusted)
//   2. the same source again (its own cache: warm)
//   3. a learning-rate edit (a new source: its cache starts as a copy of the trusted one)
//   4. a model-changing edit (DEPTH + 1: a new graph, compiled cold)
//
//   npx tsx bench/trusted-run/run.ts                  # here (cpu-tiny, 10 s budget)
//   BUDGET=60 PROFILE=gpu node dist/bench-trusted.mjs # GPU box, from `npm run bundle:bench`
// Settings: BUDGET, PROFILE, CACHE (default /tmp/trusted-run), RUNS (default 1,2,3,4), OUT (JSON file).
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { embeddedCorpusEnv, ensurePrepared, findPython } from '../../trainer/js/index.ts'
import { sourceHash, type Profile } from '../../shared/src/index.ts'
import { trainAndMeasure } from '../../worker/src/runner/measure.ts'
import { prepareRunDir } from '../../worker/src/runner/run-dir.ts'
import { detectSandbox } from '../../worker/src/sandbox/detect.ts'

const budget = Number(process.env.BUDGET ?? 10)
const profile = (process.env.PROFILE ?? 'cpu-tiny') as Profile
const cacheDir = process.env.CACHE ?? '/tmp/trusted-run'
const trainerDir = process.env.TRAINER ?? join(process.cwd(), 'trainer')
const wanted = (process.env.RUNS ?? '1,2,3,4').split(',').map(Number)

const python = await findPython()
const sandbox = await detectSandbox(python.path)
if (!sandbox.ok) throw new Error(`no sandbox: ${sandbox.problem}\n${sandbox.fix}`)
console.log(`# ${sandbox.how}; torch ${python.torchVersion}; profile ${profile}; budget ${budget}s`)
const data = await ensurePrepared({ python: python.path, trainerDir, cacheDir, profile, extraEnv: embeddedCorpusEnv(), onLine: l => console.log(`# prepare: ${l}`) })

const base = await readFile(join(trainerDir, 'train.py'), 'utf8')
const lrEdit = base.replace(/^MATRIX_LR = [\d.]+/m, 'MATRIX_LR = 0.045')
const depthEdit = base.replace(/^DEPTH = (\d+)/m, (_, d) => `DEPTH = ${Number(d) + 1}`).replace(/^TINY_DEPTH = (\d+)/m, (_, d) => `TINY_DEPTH = ${Number(d) + 1}`)
const runs = [
  { n: 1, name: 'baseline, cold cache', source: base, trusted: true },
  { n: 2, name: 'same source, warm', source: base, trusted: true },
  { n: 3, name: 'learning-rate edit (new source)', source: lrEdit, trusted: false },
  { n: 4, name: 'model-changing edit (DEPTH + 1)', source: depthEdit, trusted: false },
].filter(r => wanted.includes(r.n))

const rows = []
for (const r of runs) {
  const runDir = join(cacheDir, 'runs', String(r.n))
  await mkdir(runDir, { recursive: true })
  const files = { 'train.py': r.source }
  await prepareRunDir({ runDir, files, trainerDir })
  const started = performance.now()
  const m = await trainAndMeasure({
    python: python.path, trainerDir, runDir, budgetSeconds: budget, profile, cacheDir, dataDir: data.dataDir,
    sandbox: sandbox.host, sourceHash: sourceHash(files), trustedCode: r.trusted,
  })
  const wall = (performance.now() - started) / 1000
  const overhead = m.logTail.split('\n').find(l => l.startsWith('overhead:')) ?? ''
  const row = {
    run: r.name, status: m.status, error: m.error, wall: +wall.toFixed(1), train: +m.trainSeconds.toFixed(1),
    eval: +(m.runSeconds - m.trainSeconds).toFixed(1), evaluator: m.evaluation?.eval_seconds, trained: m.metrics?.training_seconds,
    overhead: +(wall - budget).toFixed(1), val_bpb: m.metrics?.val_bpb, probes: m.evaluation?.probes, probe_max_delta: m.evaluation?.probe_max_delta,
    trainer: overhead,
  }
  rows.push(row)
  console.log(JSON.stringify(row))
  if (m.status !== 'ok') console.log(m.logTail.split('\n').slice(-30).join('\n'))
}
console.log('\n| run | status | wall s | train s | eval s | overhead (wall - budget) s | val_bpb |')
console.log('| --- | --- | --- | --- | --- | --- | --- |')
for (const r of rows) console.log(`| ${r.run} | ${r.status} | ${r.wall} | ${r.train} | ${r.eval} | ${r.overhead} | ${r.val_bpb?.toFixed(4) ?? '-'} |`)
if (process.env.OUT) await writeFile(process.env.OUT, JSON.stringify(rows, null, 2))

/**
 * The worker's GPU duty cycle against a slow model (docs/PERFORMANCE.md): a real coordinator on
 * loopback, a real `worker join` loop with the Claude agent (the real @anthropic-ai/sdk) pointed at
 * a local Messages API server that answers each turn after 20-60 s, and the real trainer on CPU.
 * One fresh coordinator per mode: pipelining off, a fixed spare (depth 2), the adaptive depth.
 *   AUTORESEARCH_PYTHON=/usr/bin/python3 npx tsx bench/duty-cycle/run.ts
 *     [--budget 20] [--units 6] [--latency 20-60] [--turns 1] [--cap 4] [--modes adaptive,spare,off]
 *     [--seed 1] [--print-only] [--verbose]
 * Writes its table into docs/PERFORMANCE.md between the duty-cycle markers unless --print-only.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { cpus, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import type { Report } from '../../shared/src/index.ts'
import { buildServer, createCampaign, createWorkerToken, openCoordinator } from '../../coordinator/src/index.ts'
import { findPython } from '../../trainer/js/index.ts'
import { ClaudeAgent } from '../../worker/src/agent/claude.ts'
import { joinCoordinator, type JoinSummary } from '../../worker/src/loop/join.ts'
import { plainProgress, type ProgressSink } from '../../worker/src/ui/progress.ts'
import { startMessagesServer } from '../../worker/test/fixtures/messages-server.ts'
import { slowModel } from './slow-model.ts'

const USAGE = 'usage: npx tsx bench/duty-cycle/run.ts [--budget 20] [--units 6] [--latency 20-60] [--turns 1|2] [--cap 4] [--modes adaptive,spare,off] [--seed 1] [--print-only] [--verbose]'
const DOC = fileURLToPath(new URL('../../docs/PERFORMANCE.md', import.meta.url))
const BEGIN = '<!-- bench/duty-cycle: begin -->'
const END = '<!-- bench/duty-cycle: end -->'
const trainerDir = fileURLToPath(new URL('../../trainer/', import.meta.url))

const { values } = parseArgs({
  options: {
    budget: { type: 'string', default: '20' },
    units: { type: 'string', default: '6' },
    latency: { type: 'string', default: '20-60' },
    turns: { type: 'string', default: '1' },
    cap: { type: 'string', default: '4' },
    modes: { type: 'string', default: 'adaptive,spare,off' },
    seed: { type: 'string', default: '1' },
    'print-only': { type: 'boolean', default: false },
    verbose: { type: 'boolean', default: false },
  },
})
const budget = Number(values.budget)
const units = Number(values.units)
const latency = values.latency!.split('-').map(Number) as [number, number]
const turns = Number(values.turns)
const cap = Number(values.cap)
const seed = Number(values.seed)
const MODES = { off: 'off (one unit at a time)', spare: 'fixed depth 2 (one spare)', adaptive: `adaptive depth (cap ${cap})` } as const
type Mode = keyof typeof MODES
const modes = values.modes!.split(',') as Mode[]
if (!(budget > 0) || !(units >= 2) || latency.length !== 2 || !latency.every(x => x >= 0) || latency[0] > latency[1] || (turns !== 1 && turns !== 2) ||
  !(cap >= 2 && cap <= 4) || !modes.every(m => m in MODES)) {
  console.error(USAGE)
  process.exit(2)
}

interface Result {
  mode: Mode
  summary: JoinSummary
  /** The trainer's own `training_seconds`, summed over the units counted. */
  reportedTraining: number
  agentSeconds: number[]
  turnSeconds: number[]
  /** Each run as the progress display saw it: from its start to its end, in seconds from the first. */
  runs: { start: number; end: number }[]
  wallSeconds: number
  load: [number, number]
}

/**
 * From the start of the second run to the end of the last: the share of time the trainer ran once
 * the pipeline was primed. It leaves out the one-off start (the first unit's preparation and the
 * wait for the very first proposal), which a worker that runs for hours pays once.
 */
function steadyState(runs: Result['runs']): number | undefined {
  if (runs.length < 3) return undefined
  const rest = runs.slice(1)
  const busy = rest.reduce((n, r) => n + r.end - r.start, 0)
  return busy / (rest[rest.length - 1].end - rest[0].start)
}

const python = await findPython()
const seedTrain = await readFile(join(trainerDir, 'train.py'), 'utf8')
const work = await mkdtemp(join(tmpdir(), 'arg-duty-'))
/** Prepared once, before the first mode's clock starts, and shared by all. */
const dataRoot = join(work, 'data')
const log = (line: string) => console.error(`  ${line}`)

async function measure(mode: Mode): Promise<Result> {
  const dir = join(work, mode)
  const app = await openCoordinator(join(dir, 'coordinator'), { pollMs: 200 })
  const server = await buildServer(app)
  const url = await server.listen({ port: 0, host: '127.0.0.1' })
  const turnSeconds: number[] = []
  const model = await startMessagesServer(slowModel({ latency, turns: turns as 1 | 2, seed, onTurn: s => turnSeconds.push(s) }))
  try {
    await createCampaign(app, { name: 'bench', seed: { 'train.py': seedTrain }, spec: { budgetSeconds: budget, profile: 'cpu-tiny', vocabSize: 512, noise: { baselineRuns: 1 } } })
    const agent = new ClaudeAgent({ apiKey: 'bench-key', baseURL: model.url, maxRetries: 0, price: null })
    const reports: Report[] = []
    const runs: Result['runs'] = []
    const plain = plainProgress(values.verbose ? l => log(`[${mode}] ${l}`) : () => {})
    const progress: ProgressSink = {
      ...plain,
      start: (lane, run) => { runs.push({ start: performance.now() / 1000, end: NaN }); plain.start(lane, run) },
      stop: lane => { const r = runs[runs.length - 1]; if (r && Number.isNaN(r.end)) r.end = performance.now() / 1000; plain.stop(lane) },
    }
    const loadBefore = loadavg()[0]
    const started = performance.now()
    const summary = await joinCoordinator({
      url, token: createWorkerToken(app, 'bench', 'bench@example.org').token, name: `bench-${mode}`, stateDir: join(dir, 'worker'), dataRoot, trainerDir,
      agent, pipeline: mode !== 'off', maxDepth: mode === 'spare' ? 2 : cap, maxUnits: units,
      progress,
      onReport: r => reports.push(r),
    })
    const counted = reports.slice(0, units)
    return {
      mode, summary, wallSeconds: (performance.now() - started) / 1000, load: [loadBefore, loadavg()[0]], turnSeconds, runs: runs.slice(0, units).filter(r => !Number.isNaN(r.end)),
      reportedTraining: counted.reduce((n, r) => n + (r.metrics?.training_seconds ?? 0), 0),
      agentSeconds: counted.filter(r => r.agentUsage && r.agentUsage.requests > 0).map(r => r.timings.agentSeconds),
    }
  } finally {
    await model.close()
    await server.close()
    app.close()
  }
}

const pct = (x: number | undefined) => (x === undefined ? '-' : `${(100 * x).toFixed(1)} %`)
const s1 = (x: number) => `${x.toFixed(1)} s`
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length)

console.error(`# ${units} units per mode, budget ${budget} s, each model turn ${latency[0]}-${latency[1]} s, ${turns} turn(s) per proposal, cap ${cap}`)
const results: Result[] = []
try {
  for (const mode of modes) {
    console.error(`# ${MODES[mode]}`)
    const r = await measure(mode)
    results.push(r)
    log(`duty cycle ${pct(r.summary.dutyCycle)}: ${s1(r.summary.trainingSeconds)} training in ${s1(r.summary.heldSeconds)} held; steady state ${pct(steadyState(r.runs))}; ` +
      `${r.summary.units} units, most held at once ${r.summary.maxHeld}, depth at the end ${r.summary.depth}; ${s1(r.wallSeconds)} wall`)
  }
} finally {
  await rm(work, { recursive: true, force: true })
}

const rows = results.map(r => {
  const s = r.summary
  const agent = r.agentSeconds.length ? `${mean(r.agentSeconds).toFixed(0)} s (max ${Math.max(...r.agentSeconds).toFixed(0)})` : '-'
  return `| ${MODES[r.mode]} | ${s.units} | ${s.maxHeld} / ${s.depth} | ${agent} | ${s1(s.trainingSeconds / Math.max(1, s.units))} | ${s1(s.trainingSeconds)} | ${s1(s.heldSeconds)} | ` +
    `**${pct(s.dutyCycle)}** | ${pct(steadyState(r.runs))} | ${pct(s.heldSeconds > 0 ? r.reportedTraining / s.heldSeconds : undefined)} | ${r.load[0].toFixed(1)} / ${r.load[1].toFixed(1)} |`
})
const command = `AUTORESEARCH_PYTHON=${python.path} npx tsx bench/duty-cycle/run.ts` +
  `${budget !== 20 ? ` --budget ${budget}` : ''}${units !== 6 ? ` --units ${units}` : ''}${values.latency !== '20-60' ? ` --latency ${values.latency}` : ''}` +
  `${turns !== 1 ? ` --turns ${turns}` : ''}${cap !== 4 ? ` --cap ${cap}` : ''}${values.modes !== 'adaptive,spare,off' ? ` --modes ${values.modes}` : ''}${seed !== 1 ? ` --seed ${seed}` : ''}`
const table = [
  '```sh',
  command,
  '```',
  '',
  `${units} units per mode (the first a baseline, which needs no agent), budget ${budget} s, profile cpu-tiny; every model turn ${latency[0]}-${latency[1]} s ` +
  `(uniform, seed ${seed}), ${turns === 1 ? 'one turn per proposal (the edit and the finish together)' : 'two turns per proposal (the edit, then the finish)'}. ` +
  `${cpus().length} × ${cpus()[0]?.model.trim() ?? 'cpu'}, Node ${process.version}, PyTorch ${python.torchVersion}; ` +
  `${new Date().toISOString().slice(0, 10)}, load average (1 min) before / after each mode in the last column.`,
  '',
  '| mode | units | held at most / depth at the end | agent per proposal, mean (max) | trainer wall per unit | trainer wall | held | **duty cycle** (trainer wall / held) | steady state (2nd run to the end) | reported `training_seconds` / held | load |',
  '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ...rows,
].join('\n')
console.log(table)

if (!values['print-only']) {
  const doc = await readFile(DOC, 'utf8')
  const a = doc.indexOf(BEGIN)
  const b = doc.indexOf(END)
  if (a < 0 || b < a) {
    console.error(`docs/PERFORMANCE.md has no "${BEGIN}" … "${END}" markers: put them where the table goes, or run with --print-only`)
    process.exit(1)
  }
  await writeFile(DOC, `${doc.slice(0, a + BEGIN.length)}\n${table}\n${doc.slice(b)}`)
  console.error(`# wrote the table into ${DOC}`)
}

/**
 * CPU per operation of the coordinator's hot paths, in-process (docs/PERFORMANCE.md, "Coordinator
 * under load"): a real coordinator (SQLite file, git store) with N registered workers, driven by
 * direct calls, no sockets: lease + the unit message (`leaseNextUnit`, `toWorkUnit`), a report
 * (`ingestReport`, the research model of research-model.ts) and a heartbeat. It reports the
 * process's own CPU time per call, which a machine loaded by other jobs changes far less than
 * throughput, and, apart, the CPU its git processes (`changes`, refs, reads: long-running pipes)
 * used over the measured loop, per report: that is the coordinator's cost too. Last, the whole loop's
 * CPU per report, of the process and of its main thread alone: the event loop is what serves the
 * calls, the rest is V8's helpers and the coordinator's own threads (checkpoints, git objects).
 * --objects picks how the store writes a report's objects (git/store.ts): `staged` (the coordinator's
 * default: kept in the database, a pack per 200 ms window), `loose` (three files a report, the
 * default before session 19) or `packs` (a pack per 2 ms window, awaited; `--packs` says the same);
 * with --fsck, last, the store's packs and `git fsck --strict` on its repository; with --sql-time, the
 * statements that took longest over the measured loop (sql-time.ts: the timing adds to the CPU above).
 *   npx tsx bench/coordinator/ops.ts [--workers 1000] [--reports 1000] [--objects staged|loose|packs] [--fsck] [--sql-time]
 */
import { execFileSync } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { fileURLToPath } from 'node:url'
import { createRng, Report, type WorkUnit } from '../../shared/src/index.ts'
import { openCoordinator } from '../../coordinator/src/coordinator.ts'
import { createCampaign } from '../../coordinator/src/campaigns/campaigns.ts'
import { createWorkerToken } from '../../coordinator/src/auth/access.ts'
import { getWorker } from '../../coordinator/src/workers/registry.ts'
import { heartbeat, hello } from '../../coordinator/src/units/presence.ts'
import { leaseNextUnit, toWorkUnit } from '../../coordinator/src/units/assign.ts'
import { ingestReport } from '../../coordinator/src/units/report.ts'
import { editSource, HARDWARE, logTail, runMetrics } from './research-model.ts'
import { sample, threadCpuSeconds } from './proc.ts'
import { timeStatements } from './sql-time.ts'

const { values } = parseArgs({ options: { workers: { type: 'string', default: '1000' }, reports: { type: 'string', default: '1000' }, fsck: { type: 'boolean', default: false }, packs: { type: 'boolean', default: false },
  'sql-time': { type: 'boolean', default: false },
  objects: { type: 'string', default: 'staged' } } })
const objects = values.packs ? 'packs' : values.objects
if (objects !== 'staged' && objects !== 'loose' && objects !== 'packs') throw new Error(`--objects must be staged, loose or packs, not ${JSON.stringify(objects)}`)
const W = Number(values.workers)
const N = Number(values.reports)
const ROOT = fileURLToPath(new URL('../../', import.meta.url))

const dir = await mkdtemp(join(tmpdir(), 'arg-ops-'))
const app = await openCoordinator(dir, {}, { objects })
await createCampaign(app, { name: 'bench', seed: { 'train.py': await readFile(join(ROOT, 'trainer/train.py'), 'utf8') }, spec: { budgetSeconds: 2, profile: 'gpu' } })
const random = createRng(1).next
// Ten workers per contributor, as in the load benchmark (load.ts).
const workers: { id: string; unit: WorkUnit | null }[] = []
let contributor = ''
for (let i = 0; i < W; i++) {
  if (i % 10 === 0) contributor = createWorkerToken(app, `c${i / 10}`, `c${i / 10}@bench.invalid`).contributorId
  workers.push({ id: hello(app, contributor, { name: `w${i}`, hardware: HARDWARE[i % HARDWARE.length], fingerprints: {}, version: 'bench', holding: [] }).workerId, unit: null })
}

const ops = { lease: { ms: 0, n: 0 }, report: { ms: 0, n: 0 }, heartbeat: { ms: 0, n: 0 } }
async function timed<T>(op: keyof typeof ops, f: () => T | Promise<T>): Promise<T> {
  const before = process.cpuUsage()
  const out = await f()
  const used = process.cpuUsage(before)
  ops[op].ms += (used.user + used.system) / 1000
  ops[op].n++
  return out
}
const lease = async (w: (typeof workers)[number]) => {
  w.unit = await timed('lease', async () => {
    const row = leaseNextUnit(app, getWorker(app, w.id)!, () => true)
    return row && toWorkUnit(app, row)
  })
}
const sqlTime = values['sql-time'] ? timeStatements(app.db.$client) : null
for (const w of workers) await lease(w)
for (const o of Object.values(ops)) Object.assign(o, { ms: 0, n: 0 })
sqlTime?.reset()
const gitBefore = sample(process.pid)!.childCpuSeconds
const mainBefore = threadCpuSeconds(process.pid)
const processBefore = process.cpuUsage()

// A random worker reports and takes its next unit; another heartbeats.
while (ops.report.n < N) {
  const w = workers[Math.floor(random() * W)]
  if (!w.unit) { await lease(w); continue }
  const unit = w.unit
  const name = unit.editableFiles[0]
  const edit = unit.kind === 'baseline' || unit.kind === 'verify' ? { source: unit.source[name], description: `${unit.kind} run` } : editSource(unit.source[name], random)
  // Parsed as the API would (its defaults filled in), outside the timing as the API does it before the call.
  const r = Report.parse({ unitId: unit.id, leaseToken: unit.leaseToken, status: 'ok', source: { [name]: edit.source }, description: edit.description, diff: '',
    metrics: runMetrics(edit.source, 2, random), logTail: logTail(), agentNotes: '', timings: { agentSeconds: 0.2, runSeconds: 2 } })
  await timed('report', () => ingestReport(app, getWorker(app, w.id)!, r))
  // Back to the event loop between reports, as a server is between requests: work a report leaves
  // for later (the batched experiment refs, git/ref-batch.ts) runs inside the measured loop.
  await new Promise(resolve => setImmediate(resolve))
  await lease(w)
  const b = workers[Math.floor(random() * W)]
  if (b.unit) await timed('heartbeat', () => heartbeat(app, getWorker(app, b.id)!, { workerId: b.id, units: [{ unitId: b.unit!.id, leaseToken: b.unit!.leaseToken, progress: null }] }))
}
// Packs still being written and a repack still running (git/pack.ts) end inside the measure: their CPU is the loop's.
await app.git.idle()
const gitMs = (sample(process.pid)!.childCpuSeconds - gitBefore) * 1000
const mainMs = (threadCpuSeconds(process.pid) - mainBefore) * 1000
const processUsed = process.cpuUsage(processBefore)
const processMs = (processUsed.user + processUsed.system) / 1000
const per = (o: { ms: number; n: number }) => `${(o.ms / o.n).toFixed(2)} ms (n=${o.n})`
console.log(`${W} workers, ${N} reports: CPU per lease and unit message ${per(ops.lease)}, per report ${per(ops.report)}, per heartbeat ${per(ops.heartbeat)}; ` +
  `git processes ${(gitMs / ops.report.n).toFixed(2)} ms per report (clock ticks of /proc); ` +
  `the whole loop (report, next lease, heartbeat) per report: process ${(processMs / ops.report.n).toFixed(2)} ms, of which its main thread (the event loop) ${(mainMs / ops.report.n).toFixed(2)} ms`)
if (sqlTime) console.log(sqlTime.report(25).join('\n'))
if (values.fsck) {
  const packs = readdirSync(join(app.git.dir, 'objects', 'pack')).filter(f => f.endsWith('.idx')).length
  const stats = app.git.packStats()
  execFileSync('git', ['fsck', '--strict'], { cwd: app.git.dir, stdio: ['ignore', 'ignore', 'inherit'] })
  console.log(`git store: ${stats.packsWritten} packs written, ${stats.repacks} repacks, ${packs} packs in objects/pack; git fsck --strict: content`)
}
await app.close()
await rm(dir, { recursive: true, force: true })

import { openCoordinator } from '../src/coordinator.ts'
import { createCampaign } from '../src/campaigns/campaigns.ts'
import { createWorkerToken } from '../src/auth/access.ts'
import { hello } from '../src/workers/registry.ts'
import { leaseNextUnit, toWorkUnit } from '../src/units/assign.ts'
import { ingestReport } from '../src/units/report.ts'
import { editSource, runMetrics, logTail, HARDWARE, rng } from '../../bench/coordinator/research-model.ts'
import { mkdtemp } from 'node:fs/promises'
import { readFileSync } from 'node:fs'
const dir = await mkdtemp('/tmp/ing-')
const app = await openCoordinator(dir)
await createCampaign(app, { name: 'b', seed: { 'train.py': readFileSync('/work/main/trainer/train.py', 'utf8') }, spec: { budgetSeconds: 2, profile: 'gpu' } })
const { contributorId } = createWorkerToken(app, 'c', 'c@x')
const N = Number(process.argv[2] ?? 200)
const workers = Array.from({ length: N }, (_, i) => hello(app, contributorId, { name: `w${i}`, hardware: HARDWARE[i % 3], fingerprints: {}, version: 'x', holding: [] } as never).workerId)
const random = rng(1)
const { getWorker } = await import('../src/workers/registry.ts')
const t: Record<string, number> = { lease: 0, toUnit: 0, ingest: 0, durable: 0 }
let done = 0
const t0 = performance.now()
async function loop(id: string) {
  while (performance.now() - t0 < 10000) {
    let a = performance.now()
    const u = leaseNextUnit(app, getWorker(app, id)!, () => true)!
    t.lease += performance.now() - a; a = performance.now()
    const unit = await toWorkUnit(app, u)
    t.toUnit += performance.now() - a; a = performance.now()
    await app.db.durable()
    t.durable += performance.now() - a; a = performance.now()
    const measuring = unit.kind === 'baseline' || unit.kind === 'verify'
    const src = measuring ? unit.source['train.py'] : editSource(unit.source['train.py'], random).source
    await ingestReport(app, getWorker(app, id)!, { unitId: unit.id, leaseToken: unit.leaseToken, status: 'ok', source: { 'train.py': src }, description: 'x', diff: '', metrics: runMetrics(src, 2, random), logTail: logTail(), agentNotes: '', followUps: [], timings: { agentSeconds: 0, runSeconds: 1 } } as never)
    t.ingest += performance.now() - a; a = performance.now()
    await app.db.durable()
    t.durable += performance.now() - a
    done++
  }
}
const cu = process.cpuUsage()
await Promise.all(workers.map(loop))
const el = performance.now() - t0
console.log(N, 'workers:', (done / el * 1000).toFixed(0), 'reports/s; per report ms', Object.fromEntries(Object.entries(t).map(([k, v]) => [k, (v / done).toFixed(2)])), 'cpu%', ((process.cpuUsage(cu).user + process.cpuUsage(cu).system) / 1000 / el * 100).toFixed(0))
app.close()

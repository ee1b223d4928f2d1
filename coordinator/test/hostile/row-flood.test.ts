import t from 'tap'
import { randomBytes } from 'node:crypto'
import type { AssignmentEvent, WorkUnit } from '@autoresearch-grid/shared'
import type { TRPCClientError } from '@trpc/client'
import { createCampaign } from '../../src/campaigns/campaigns.ts'
import { CPU, joinWorkers, metrics, report, SEED_TRAIN_PY, startCoordinator, wsClient } from '../helpers.ts'

async function mallory(c: Awaited<ReturnType<typeof startCoordinator>>, teardown: (fn: () => void) => void) {
  const { api, close } = wsClient(c.url, c.workerToken('mallory'))
  teardown(close)
  const { workerId } = await api.worker.hello.mutate({ name: 'm0', hardware: CPU, fingerprints: {}, version: 't' })
  const units: WorkUnit[] = []
  const sub = api.worker.assignments.subscribe({ workerId, capacity: 4 }, { onData: (e: AssignmentEvent) => { if (e.type === 'unit') units.push(e.unit) } })
  teardown(() => sub.unsubscribe())
  const next = async () => { while (!units.length) await new Promise(r => setTimeout(r, 10)); return units.shift()! }
  return { api, workerId, next }
}

t.test('a reuse of an earlier experiment stores no copy of its diff', async t => {
  const c = await startCoordinator({ maxOpenUnitsPerContributor: 32 })
  t.teardown(c.close)
  await c.campaign('demo')
  const [ben] = await joinWorkers(c, ['ben'])
  t.teardown(ben.close)
  await ben.api.worker.report.mutate({ workerId: ben.workerId, report: report(await ben.next(), 1.5) })
  const { api, workerId, next } = await mallory(c, t.teardown)

  // One measured candidate, worse than the best (so the best, and every unit's parent, stays).
  const big = `X = 1\n${randomBytes(180_000).toString('base64')}\n`
  const first = await api.worker.report.mutate({ workerId, report: { ...report(await next(), 2.0, big), metrics: metrics(2.0) } })
  const reuses = 40
  for (let i = 0; i < reuses; i++) {
    const u = await next()
    await api.worker.report.mutate({ workerId, report: { ...report(u, null, big), reused: { experimentId: first.experimentId } } })
  }
  const rows = c.app.db.$client.prepare("select count(*) as n, sum(length(diff)) as bytes from experiments where reason = 'reused'").get() as { n: number; bytes: number | null }
  t.comment(`RESULT ${rows.n} reuses stored ${rows.bytes ?? 0} bytes of diff`)
  t.equal(rows.n, reuses, 'every reuse is on record')
  t.equal(rows.bytes ?? 0, 0, 'none of them copied the earlier experiment\'s diff')
  const detail = await api.dashboard.experimentDetail.query({ id: (c.app.db.$client.prepare("select id from experiments where reason = 'reused' limit 1").get() as { id: string }).id })
  t.match(detail?.diff, /^diff --git/, 'the dashboard still shows a reuse\'s change, from git')
})

t.test('reports of unchanged code and reuses are paced like reports of new code', async t => {
  // Four units at once, so eight reports per window; a budget of an hour makes the window far
  // longer than the test (as in report-flood.test.ts).
  const c = await startCoordinator({ maxOpenUnitsPerContributor: 4 })
  t.teardown(c.close)
  await createCampaign(c.app, { name: 'demo', seed: { 'train.py': SEED_TRAIN_PY }, spec: { budgetSeconds: 3600, profile: 'cpu-tiny', noise: { policy: 'fixed', replications: 0, baselineRuns: 1 } } })
  const [ben] = await joinWorkers(c, ['ben'])
  t.teardown(ben.close)
  await ben.api.worker.report.mutate({ workerId: ben.workerId, report: { ...report(await ben.next(), 1.5), metrics: metrics(1.5, 3600) } })
  const { api, workerId, next } = await mallory(c, t.teardown)

  let stored = 0
  const refused: TRPCClientError<never>[] = []
  for (let i = 0; i < 20 && refused.length < 2; i++) {
    const u = await next()
    // The parent's code, as given, a crash with a full log tail and notes: no commit, a row.
    await api.worker.report.mutate({ workerId, report: { ...report(u, null), logTail: 'L'.repeat(16 * 1024), agentNotes: 'N'.repeat(4000) } })
      .then(() => stored++, (e: TRPCClientError<never>) => { refused.push(e) })
  }
  t.comment(`RESULT mallory's instant unchanged crash reports stored: ${stored}, refused: ${refused.length}`)
  t.equal(stored, 8, 'twice the units she may hold are stored')
  t.equal((refused[0].data as unknown as { code?: string }).code, 'TOO_MANY_REQUESTS', 'the rest are refused as a worker retries them later')
  const reuse = await api.worker.report.mutate({ workerId, report: { ...report(await next(), null), reused: { experimentId: 'e-none' } } }).catch((e: TRPCClientError<never>) => e)
  t.equal((reuse as TRPCClientError<never>).data && ((reuse as TRPCClientError<never>).data as unknown as { code?: string }).code, 'TOO_MANY_REQUESTS', 'and so is a reuse')
})

t.test('crashed baselines of a class of one\'s own are paced too', async t => {
  const c = await startCoordinator({ maxOpenUnitsPerContributor: 4 })
  t.teardown(c.close)
  await createCampaign(c.app, { name: 'demo', seed: { 'train.py': SEED_TRAIN_PY }, spec: { budgetSeconds: 3600, profile: 'cpu-tiny', noise: { policy: 'parallel', baselineRuns: 4, priorSigma: 0.01 } } })
  const { api, close } = wsClient(c.url, c.workerToken('mallory'))
  t.teardown(close)
  // A class nobody else has: its baselines are hers alone, and a crashed one is queued again.
  const { workerId } = await api.worker.hello.mutate({ name: 'm0', hardware: { ...CPU, hardwareClass: 'mallory-1' }, fingerprints: {}, version: 't' })
  const units: WorkUnit[] = []
  const sub = api.worker.assignments.subscribe({ workerId, capacity: 4 }, { onData: (e: AssignmentEvent) => { if (e.type === 'unit') units.push(e.unit) } })
  t.teardown(() => sub.unsubscribe())
  let stored = 0
  const refused: TRPCClientError<never>[] = []
  for (let i = 0; i < 20 && refused.length < 2; i++) {
    while (!units.length) await new Promise(r => setTimeout(r, 10))
    const u = units.shift()!
    t.equal(u.kind, 'baseline')
    await api.worker.report.mutate({ workerId, report: { ...report(u, null), logTail: 'L'.repeat(16 * 1024), agentNotes: 'N'.repeat(4000) } })
      .then(() => stored++, (e: TRPCClientError<never>) => { refused.push(e) })
  }
  t.comment(`RESULT mallory's instant baseline crashes stored: ${stored}, refused: ${refused.length}`)
  t.equal(stored, 8, 'twice the units she may hold are stored')
  t.equal((refused[0].data as unknown as { code?: string }).code, 'TOO_MANY_REQUESTS', 'the rest wait')
})

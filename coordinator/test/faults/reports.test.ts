import t from 'tap'
import type { Test } from 'tap'
import { simpleGit } from 'simple-git'
import { join } from 'node:path'
import type { AssignmentEvent, WorkUnit } from '@autoresearch-grid/shared'
import { expireLeases } from '../../src/units/leases.ts'
import { CPU, httpClient, joinWorkers, report, SEED_TRAIN_PY, startCoordinator, wsClient } from '../helpers.ts'

// DESIGN §8: "Reports are idempotent"; "a late report for an expired lease is still recorded if its
// lease token matches and nothing newer superseded it". Reports that arrive twice, at once, late,
// or in another order than their units were handed out.

type Coordinator = Awaited<ReturnType<typeof startCoordinator>>

const experimentsOf = (c: Coordinator, unitId?: string) =>
  (c.app.db.$client.prepare(`select id, worker_id as workerId, status from experiments${unitId ? ' where unit_id = ?' : ''}`).all(...(unitId ? [unitId] : [])) as
    { id: string; workerId: string; status: string }[])

/** Moves the coordinator's clock past every lease and lets the expiry run, as if the worker had been away. */
function outliveLeases(c: Coordinator): number {
  const now = c.app.now
  c.app.now = () => Date.now() + 3600_000
  try {
    return expireLeases(c.app)
  } finally {
    c.app.now = now
  }
}

t.test('the same report sent ten times at once, over WebSocket and HTTP, is stored and merged once', async t => {
  const c = await startCoordinator()
  t.teardown(c.close)
  await c.campaign()
  const [a] = await joinWorkers(c, ['ann'])
  t.teardown(a.close)
  await a.api.worker.report.mutate({ workerId: a.workerId, report: report(await a.next(), 1.5) })
  const unit = await a.next()
  const win = report(unit, 1.4, SEED_TRAIN_PY.replace('DEPTH = 4', 'DEPTH = 6'))
  const http = httpClient(c.url, c.workerToken('ann'))
  const answers = await Promise.all(Array.from({ length: 10 }, (_, i) =>
    (i % 2 ? http : a.api).worker.report.mutate({ workerId: a.workerId, report: win })))
  t.equal(answers.filter(r => !r.duplicate).length, 1, 'one answer says stored, nine say duplicate')
  t.equal(new Set(answers.map(r => r.experimentId)).size, 1, 'all name the same experiment')
  t.equal(experimentsOf(c, unit.id).length, 1)
  const again = await a.api.worker.report.mutate({ workerId: a.workerId, report: win })
  t.equal(again.duplicate, true, 'a repeat after the merge is a duplicate too')
  const merges = c.app.db.$client.prepare('select count(*) as n from merges').get() as { n: number }
  t.equal(merges.n, 1, 'merged once')
  t.equal((await simpleGit(join(c.dir, 'git')).raw(['rev-list', '--count', 'autoresearch/demo'])).trim(), '2', 'the seed and one merge on the branch')
  t.comment(`RESULT reports-duplicate: sent=11 stored=1 duplicates=${answers.filter(r => r.duplicate).length + 1} merges=${merges.n}`)
})

t.test('results of two held units that arrive in the opposite order are both stored and decided', async t => {
  const c = await startCoordinator()
  t.teardown(c.close)
  await c.campaign()
  const { api, close } = wsClient(c.url, c.workerToken('ann'))
  t.teardown(close)
  const { workerId } = await api.worker.hello.mutate({ name: 'gpu0', hardware: CPU, fingerprints: {}, version: 't' })
  const units = await new Promise<WorkUnit[]>(resolve => {
    const got: WorkUnit[] = []
    const sub = api.worker.assignments.subscribe({ workerId, capacity: 2 }, {
      onData: (e: AssignmentEvent) => { if (e.type === 'unit' && got.push(e.unit) === 2) { sub.unsubscribe(); resolve(got) } },
    })
  })
  t.same(units.map(u => u.kind), ['baseline', 'explore'])
  const [baseline, explore] = units
  const candidate = await api.worker.report.mutate({ workerId, report: report(explore, 1.45, SEED_TRAIN_PY.replace('DEPTH = 4', 'DEPTH = 5')) })
  t.match(candidate.decision, /^waiting for a baseline/, 'the candidate waits for the baseline it was handed out after')
  await api.worker.report.mutate({ workerId, report: report(baseline, 1.5) })
  t.equal(experimentsOf(c).length, 2)
  t.equal((await api.dashboard.experiment.query({ id: candidate.experimentId }))?.status, 'kept', 'the baseline settled the candidate when it came in')
})

/** One worker, one unit leased to it, and the lease run out with nobody taking the unit since. */
async function leaseRunOut(t: Test, why: string) {
  const c = await startCoordinator()
  t.teardown(c.close)
  await c.campaign()
  const [a] = await joinWorkers(c, ['ann'])
  t.teardown(a.close)
  const unit = await a.next()
  a.stopFeed()
  t.equal(outliveLeases(c), 1, why)
  return { c, a, unit }
}

/** A second worker joins and is handed the unit whose lease ran out. */
async function retakenByBen(t: Test, c: Awaited<ReturnType<typeof startCoordinator>>) {
  const [b] = await joinWorkers(c, ['ben'])
  t.teardown(b.close)
  return { b, retaken: await b.next() }
}

t.test('a late report for an expired lease that nobody took since is still stored', async t => {
  const { c, a, unit } = await leaseRunOut(t, 'the lease ran out')
  const late = await a.api.worker.report.mutate({ workerId: a.workerId, report: report(unit, 1.5) })
  t.equal(late.duplicate, false)
  t.match(late.decision, /^measured/)
  t.equal(experimentsOf(c, unit.id).length, 1)
})

t.test('a heartbeat after the lease ran out, while nobody took the unit since, takes it back instead of cancelling the run', async t => {
  const { c, a, unit } = await leaseRunOut(t, 'the lease ran out (a worker frozen past it, say)')
  const hb = await a.api.worker.heartbeat.mutate({ workerId: a.workerId, units: [{ unitId: unit.id, leaseToken: unit.leaseToken, progress: null }] })
  t.same(hb.cancelled, [], 'the run is not cancelled')
  const row = c.app.db.$client.prepare('select state, worker_id as workerId from work_units where id = ?').get(unit.id) as { state: string; workerId: string }
  t.same(row, { state: 'leased', workerId: a.workerId }, 'the unit is leased to it again, under the same token')
  const stored = await a.api.worker.report.mutate({ workerId: a.workerId, report: report(unit, 1.5) })
  t.equal(stored.duplicate, false)
  t.equal(experimentsOf(c, unit.id).length, 1)
})

t.test('a late report after another worker took the unit and reported it is refused; one experiment stands', async t => {
  const { c, a, unit } = await leaseRunOut(t, 'the lease ran out')
  const { b, retaken } = await retakenByBen(t, c)
  t.equal(retaken.id, unit.id, 'the expired unit is the next one handed out')
  t.not(retaken.leaseToken, unit.leaseToken, 'under a new lease')
  await b.api.worker.report.mutate({ workerId: b.workerId, report: report(retaken, 1.5) })
  await t.rejects(a.api.worker.report.mutate({ workerId: a.workerId, report: report(unit, 1.2) }), /already reported by another worker/)
  t.same(experimentsOf(c, unit.id).map(e => e.workerId), [b.workerId])
})

t.test('a late report while another worker holds the unit is refused, and the holder’s report is stored', async t => {
  const { c, a, unit } = await leaseRunOut(t, 'the lease ran out')
  const { b, retaken } = await retakenByBen(t, c)
  await t.rejects(a.api.worker.report.mutate({ workerId: a.workerId, report: report(unit, 1.2) }), /re-assigned/)
  // A stolen lease token does not help either: the unit is leased to someone else.
  await t.rejects(a.api.worker.report.mutate({ workerId: a.workerId, report: report(retaken, 1.2) }), /leased to another worker/)
  const stored = await b.api.worker.report.mutate({ workerId: b.workerId, report: report(retaken, 1.5) })
  t.equal(stored.duplicate, false)
  t.same(experimentsOf(c, unit.id).map(e => e.workerId), [b.workerId])
  const hb = await a.api.worker.heartbeat.mutate({ workerId: a.workerId, units: [{ unitId: unit.id, leaseToken: unit.leaseToken, progress: null }] })
  t.same(hb.cancelled, [unit.id], "the old holder's heartbeat is told to stop")
})

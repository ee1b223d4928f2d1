import t from 'tap'
import { joinWorkers, report, startCoordinator, wsClient } from '../helpers.ts'

// One contributor acting as another: every worker procedure names its worker by id, and a worker
// id is no secret (the dashboard lists workers). Mallory, with her own valid token, names Ben's
// worker in each of them; all are refused the same way, and Ben's lease, feed and unit are as
// they were. Already enforced by `ownWorker` (workers/registry.ts); no test named another
// contributor's worker in every procedure before.

t.test('a valid token naming another contributor\'s worker is refused in every worker procedure, and that worker\'s lease is untouched', async t => {
  const c = await startCoordinator()
  t.teardown(c.close)
  await c.campaign('demo')
  const [ben] = await joinWorkers(c, ['ben'])
  t.teardown(ben.close)
  const unit = await ben.next()
  const mallory = wsClient(c.url, c.workerToken('mallory'))
  t.teardown(mallory.close)
  const refused = /unknown worker ".*": call worker.hello first/
  const workerId = ben.workerId
  const lease = () => c.app.db.$client.prepare('select worker_id as w, lease_token as token, lease_expires_at as until, state from work_units where id = ?').get(unit.id)
  const before = lease()

  await t.rejects(mallory.api.worker.report.mutate({ workerId, report: report(unit, 1.0) }), refused, 'report')
  await t.rejects(mallory.api.worker.heartbeat.mutate({ workerId, units: [{ unitId: unit.id, leaseToken: unit.leaseToken, progress: null }] }), refused, 'heartbeat')
  await t.rejects(mallory.api.worker.unitSource.query({ workerId, unitId: unit.id }), refused, 'unitSource')
  await t.rejects(mallory.api.worker.propose.mutate({ workerId, campaign: 'demo', hypotheses: [{ title: 'in ben\'s name', body: '' }] }), refused, 'propose')
  await t.rejects(mallory.api.worker.known.query({ workerId, campaign: 'demo', sourceHash: 'a'.repeat(64) }), refused, 'known')
  await t.rejects(mallory.api.swarm.search.query({ workerId, campaign: 'demo', query: { text: 'x' } as never }), refused, 'swarm.search')
  const feed = new Promise<string>(resolve => {
    const sub = mallory.api.worker.assignments.subscribe({ workerId }, { onData: () => { sub.unsubscribe(); resolve('data') }, onError: e => resolve(e.message) })
  })
  t.match(await feed, refused, 'assignments')

  // With the lease token too (leaked, or a friend's), her own worker cannot report or keep the unit.
  const { workerId: hers } = await mallory.api.worker.hello.mutate({ name: 'gpu0', hardware: { gpus: [], cpu: { model: 'x', cores: 2, arch: 'x86_64' }, platform: 'linux', torch: null, hardwareClass: 'cpu-x86_64' }, fingerprints: {}, version: 't' })
  await t.rejects(mallory.api.worker.report.mutate({ workerId: hers, report: report(unit, 1.0) }), /is leased to another worker/, 'a report of a unit leased to another worker')
  const beat = await mallory.api.worker.heartbeat.mutate({ workerId: hers, units: [{ unitId: unit.id, leaseToken: unit.leaseToken, progress: null }] })
  t.same(beat.cancelled, [unit.id], 'a heartbeat for it is told to drop it, and renews nothing')
  t.same(lease(), before, 'ben\'s lease is as it was')
  const stored = await ben.api.worker.report.mutate({ workerId: ben.workerId, report: report(unit, 1.5) })
  t.notOk(stored.duplicate, 'ben\'s own report is stored')
})

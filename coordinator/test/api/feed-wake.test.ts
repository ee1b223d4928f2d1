import t, { type Test } from 'tap'
import type { WorkUnit } from '@autoresearch-grid/shared'
import { CPU, report, startCoordinator, wsClient } from '../helpers.ts'
import { sleep, until } from '../../../shared/test/support/until.ts'
import { expireLeases } from '../../src/units/leases.ts'

// A full feed sleeps until something frees room in it; its slow timer (30 polls: 60 s at the
// default poll of 2 s, used here) is only a safety net. These tests wait far less than that.

async function oneWorker(t: Test) {
  const c = await startCoordinator({ pollMs: 2000 })
  t.teardown(c.close)
  await c.campaign('demo')
  const { api, close } = wsClient(c.url, c.workerToken())
  t.teardown(close)
  const { workerId } = await api.worker.hello.mutate({ name: 'w', hardware: CPU, fingerprints: {}, version: 't' })
  const units: WorkUnit[] = []
  const sub = api.worker.assignments.subscribe({ workerId, capacity: 1 }, { onData: e => { if (e.type === 'unit') units.push(e.unit) } })
  t.teardown(() => sub.unsubscribe())
  await until('the first unit', () => units.length === 1, { everyMs: 20 })
  return { c, api, workerId, units }
}

t.test('a worker whose lease ran out is offered work again at once, not at its feed\'s slow timer', async t => {
  const { c, units } = await oneWorker(t)
  const later = c.app.now() + 24 * 3600_000
  c.app.now = () => later
  t.equal(expireLeases(c.app), 1, 'its one lease expired')
  await Promise.race([until('a unit after the expiry', () => units.length === 2, { everyMs: 20 }), sleep(15_000)])
  t.equal(units.length, 2, 'a unit came within 15 s')
  t.equal(units[1].id, units[0].id, 'the expired unit, handed out again (the only worker)')
})

t.test('a heartbeat is answered while the disk sync is stalled; a report still waits for it', async t => {
  const { c, api, workerId, units } = await oneWorker(t)
  const synced = c.app.db.durable
  // Every sync asked for while stalled waits here; `release` restores the disk and lets them all go.
  const stalled: (() => void)[] = []
  c.app.db.durable = () => new Promise<void>(resolve => { stalled.push(() => void synced().then(resolve)) })
  const release = () => {
    c.app.db.durable = synced
    for (const go of stalled.splice(0)) go()
  }
  t.teardown(release)
  const beat = await Promise.race([api.worker.heartbeat.mutate({ workerId, units: [{ unitId: units[0].id, leaseToken: units[0].leaseToken, progress: null }] }), sleep(10_000)])
  t.same(beat?.cancelled, [], 'the heartbeat is answered, its lease renewed')
  let reported = false
  const reply = api.worker.report.mutate({ workerId, report: report(units[0], 2.5) }).then(r => { reported = true; return r })
  await sleep(300)
  t.notOk(reported, 'the report is not acknowledged before its commit is on disk')
  release()
  t.ok(await reply, 'and is once the sync ran')
})

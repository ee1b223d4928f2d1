import t from 'tap'
import { report, startCoordinator, subscribedWorker } from '../helpers.ts'
import { sleep, until } from '../../../shared/test/support/until.ts'

// Heartbeats are answered before their commit is on disk (api/trpc.ts, `acknowledgeBeforeSync`):
// a renewal lost to a power cut does no harm, a restarted coordinator extends every lease anyway.
t.test('a heartbeat is answered while the disk sync is stalled; a report still waits for it', async t => {
  const c = await startCoordinator({ pollMs: 2000 })
  t.teardown(c.close)
  await c.campaign('demo')
  const { api, workerId, units } = await subscribedWorker(c, fn => t.teardown(fn))
  await until('the first unit', () => units.length === 1, { everyMs: 20 })
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

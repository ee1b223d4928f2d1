import t from 'tap'
import type { WorkUnit } from '@autoresearch-grid/shared'
import { report, startCoordinator, subscribedWorker } from '../helpers.ts'
import { sleep, until as poll } from '../../../shared/test/support/until.ts'

// A worker's capacity (how many units it holds at once, its pipeline depth) is set when it
// subscribes and changed later by its heartbeats: the feed sends units up to the latest one.

t.test("a heartbeat's capacity raises and lowers how many units the feed hands out", async t => {
  const c = await startCoordinator()
  t.teardown(c.close)
  await c.campaign('demo') // one baseline, then explorations: always work to hand out
  const { api, workerId, units } = await subscribedWorker(c, fn => t.teardown(fn))
  const until = async (n: number) => {
    await poll(`${n} units`, () => units.length >= n, { everyMs: 20 })
    return units.length
  }
  const beat = (capacity: number, held: WorkUnit[]) =>
    api.worker.heartbeat.mutate({ workerId, capacity, units: held.map(u => ({ unitId: u.id, leaseToken: u.leaseToken, progress: null })) })

  t.equal(await until(1), 1, 'capacity 1 at subscription: one unit')
  await sleep(300)
  t.equal(units.length, 1, 'and no second one')

  await beat(3, units)
  t.equal(await until(3), 3, 'a heartbeat with capacity 3: two more, without a report')

  await beat(1, units)
  for (const u of units.slice(0, 2)) await api.worker.report.mutate({ workerId, report: report(u, 2.5) })
  await sleep(500)
  t.equal(units.length, 3, 'capacity lowered to 1: with one unit still held, nothing new after two reports')

  await api.worker.report.mutate({ workerId, report: report(units[2], 2.5) })
  t.equal(await until(4), 4, 'the last report frees the one place: one new unit')
  await sleep(300)
  t.equal(units.length, 4, 'and only one')
})

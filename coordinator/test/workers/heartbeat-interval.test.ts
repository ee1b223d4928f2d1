import t from 'tap'
import { heartbeatSeconds, HEARTBEAT } from '../../src/workers/heartbeat-interval.ts'
import { CPU, startCoordinator, wsClient } from '../helpers.ts'

t.test('a few hundred workers beat every 5 s; more are spaced out to keep the total rate bounded', async t => {
  t.equal(heartbeatSeconds(1), HEARTBEAT.minSeconds)
  t.equal(heartbeatSeconds(1000), HEARTBEAT.minSeconds, '1,000 workers: 200 heartbeats a second')
  t.equal(heartbeatSeconds(5000), 20, '5,000 workers: one every 20 s each, 250 a second')
  t.equal(heartbeatSeconds(10_000), 40)
  t.equal(heartbeatSeconds(1_000_000), HEARTBEAT.maxSeconds, 'never so rare that a lease is at risk')
  for (const n of [300, 2000, 7777, 10_000, 14_999]) t.ok(n / heartbeatSeconds(n) <= HEARTBEAT.perSecond + 1e-9, `${n} workers stay within ${HEARTBEAT.perSecond}/s`)
})

t.test('hello and every heartbeat tell the worker when to beat next', async t => {
  const c = await startCoordinator()
  t.teardown(c.close)
  await c.campaign('demo')
  const { api, close } = wsClient(c.url, c.workerToken())
  t.teardown(close)
  const hi = await api.worker.hello.mutate({ name: 'w', hardware: CPU, fingerprints: {}, version: 't' })
  t.equal(hi.heartbeatSeconds, HEARTBEAT.minSeconds)
  const beat = await api.worker.heartbeat.mutate({ workerId: hi.workerId, units: [] })
  t.same(beat, { cancelled: [], heartbeatSeconds: HEARTBEAT.minSeconds })
})

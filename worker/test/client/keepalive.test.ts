import t from 'tap'
import { HEARTBEAT_MAX_SECONDS, KEEPALIVE } from '@autoresearch-grid/shared'
import { heartbeatSeconds, HEARTBEAT } from '../../../coordinator/src/workers/heartbeat-interval.ts'
import { workerKeepAlive } from '../../src/client/connect.ts'

t.test('neither end of a live worker\'s socket pings: both wait longer than the longest heartbeat, and a dead link is still found', async t => {
  // A live worker sends a heartbeat and hears its reply at least every HEARTBEAT.maxSeconds, so a
  // keep-alive that waits longer never fires on it. The worker's once pinged after 10 s of quiet:
  // ~750 pings a second at 10,000 workers.
  const beatMs = heartbeatSeconds(Number.MAX_SAFE_INTEGER) * 1000
  t.equal(HEARTBEAT.maxSeconds, HEARTBEAT_MAX_SECONDS)
  t.ok(workerKeepAlive.intervalMs > beatMs, `the worker pings after ${workerKeepAlive.intervalMs} ms of quiet, beyond the ${beatMs} ms between beats`)
  t.ok(KEEPALIVE.idleMs > beatMs, 'the coordinator waits longer than that too')
  t.ok(workerKeepAlive.intervalMs + workerKeepAlive.pongTimeoutMs <= 90_000, 'a worker finds a dead link within 90 s')
})

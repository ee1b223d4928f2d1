import t from 'tap'
import { runLoad } from '../../../bench/coordinator/load.ts'

// The machinery of `npx tsx bench/coordinator/run.ts` at a size a test can afford, so the load
// benchmark cannot rot unnoticed: a real coordinator process, client processes with one
// WebSocket per simulated worker, the whole loop of hello, assignment, heartbeat and report.
t.test('the load benchmark runs: every simulated worker gets a unit and reports are ingested', async t => {
  const r = await runLoad({ workers: 50, seconds: 3, rate: 50, workersPerProcess: 25 })
  t.equal(r.connected, 50, 'every worker said hello')
  t.equal(r.connect.n, 50, 'and its connect time was measured')
  t.equal(r.helloFailures, 0)
  t.equal(r.workersWithUnit, 50, 'every worker got a unit')
  t.ok(r.reportsInWindow > 0, `reports were acknowledged in the window (${r.reportsInWindow})`)
  const stored = Object.values(r.experiments).reduce((a, b) => a + b, 0)
  t.ok(stored >= r.reportsInWindow, `the coordinator stored them (${stored} experiments)`)
  t.ok(r.nextUnit.n > 0, 'assignment latencies were measured')
  t.ok(r.heartbeatsPerSecond > 0, 'workers heartbeat (as often as the coordinator asks)')
  t.ok(r.peakRssMb > 0 && Number.isFinite(r.cpuPercent), 'the coordinator process was measured')
  t.same(r.errors, {}, 'no call failed')
})

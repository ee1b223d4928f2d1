import t from 'tap'
import { startCoordinator } from '../helpers.ts'
import { FlakyProxy } from './flaky-proxy.ts'
import { ScriptedWorker } from './scripted-worker.ts'
import { scriptedResult } from './trained-value.ts'
import { until } from '../../../shared/test/support/until.ts'

// DESIGN §8 and §11: reports are idempotent. Two workers reach the coordinator only through a
// proxy that delays every chunk by up to 40 ms and cuts every connection within 0.15-1.15 s, so
// answers get lost after the coordinator stored the report, requests die half sent, and reports go
// out again over WebSocket and over HTTP. Every unit must end up as exactly one experiment.
const UNITS_PER_WORKER = 40

t.test('through a proxy that cuts and delays connections, every report is stored exactly once', async t => {
  const c = await startCoordinator({ leaseMarginSeconds: 60 })
  t.teardown(c.close)
  await c.campaign()
  const target = new URL(c.url)
  const proxy = new FlakyProxy({ host: target.hostname, port: Number(target.port) }, {
    delayMs: () => (Math.random() < 0.5 ? 0 : Math.random() * 40),
    lifetimeMs: () => 150 + Math.random() * 1000,
  })
  const url = await proxy.listen()
  t.teardown(() => proxy.close())
  let n = 0
  const workers = ['ann', 'ben'].map(name => new ScriptedWorker({
    url, httpUrl: url, token: c.workerToken(name), name, maxUnits: UNITS_PER_WORKER,
    result: unit => scriptedResult(unit, n++ % 3 === 0, name),
    trainMs: () => 20 + Math.random() * 80,
    // Alternate the way a report travels: the feed's socket, or a plain HTTP request.
    reportOver: attempt => (attempt % 2 === 0 ? 'ws' : 'http'),
    retryDelayMs: attempt => Math.min(2000, 200 * 2 ** attempt),
  }))
  t.teardown(() => Promise.all(workers.map(w => w.stop())))
  // Joining goes through the proxy too: a cut hello is simply tried again.
  for (const w of workers) {
    for (let i = 0; ; i++) {
      try { await w.start(); break } catch (err) { if (i >= 20) throw err }
    }
  }

  await until(`${UNITS_PER_WORKER} units per worker, each answered`, () => workers.every(w => w.units.length >= UNITS_PER_WORKER && !w.holding().length), { everyMs: 200 })
  const cutsWhileWorking = proxy.cuts
  proxy.settle()
  const undelivered = await Promise.all(workers.map(w => w.drain()))
  t.same(undelivered, [0, 0], 'every unit taken got an answer')

  const replies = workers.flatMap(w => w.replies)
  const refusals = workers.flatMap(w => w.refusals)
  const rows = c.app.db.$client.prepare('select id, unit_id as unitId, worker_id as workerId from experiments').all() as { id: string; unitId: string; workerId: string }[]
  const byUnit = new Map(rows.map(r => [r.unitId, r]))
  t.equal(rows.length, byUnit.size, 'one experiment per unit')
  const answered = new Set(replies.map(r => r.unitId))
  t.ok([...answered].every(u => byUnit.has(u)), `each of the ${answered.size} answered units has its experiment`)
  t.ok(replies.every(r => byUnit.get(r.unitId)!.id === r.experimentId), 'every answer for a unit names the same experiment')
  const firsts = new Map<string, number>()
  for (const r of replies) if (!r.duplicate) firsts.set(r.unitId, (firsts.get(r.unitId) ?? 0) + 1)
  t.ok([...firsts.values()].every(k => k === 1), 'no unit was answered as new twice')
  // A worker that reconnects says hello with the units it holds; a unit pushed to it on the new
  // socket before that hello is processed goes back to the queue, and may be done by the other
  // worker first. Such a result is refused with the reason, never stored twice.
  t.same(refusals.filter(r => !/re-assigned|leased to another|already reported by another worker/.test(r.message)), [], 'nothing refused but leases that moved on')
  const taken = workers.flatMap(w => w.units.map(u => u.id))
  t.ok(taken.every(u => answered.has(u) || refusals.some(r => r.unitId === u)), 'every unit taken was answered or refused with a reason')
  t.ok(cutsWhileWorking >= 10, `the proxy cut ${cutsWhileWorking} connections while the workers worked`)
  const duplicates = replies.filter(r => r.duplicate).length
  const lostAnswers = [...answered].filter(u => !firsts.has(u)).length
  t.comment(`RESULT flaky-network: units=${taken.length} distinct-units=${new Set(taken).size} answered=${answered.size} experiments=${rows.length} duplicates=${duplicates} first-answer-lost=${lostAnswers} ` +
    `refused=${refusals.length} connections=${proxy.connections} cuts=${cutsWhileWorking} chunks=${proxy.chunks} report-attempts=${workers.reduce((s, w) => s + w.attempts, 0)} ` +
    `failed-attempts=${workers.reduce((s, w) => s + w.failedAttempts, 0)} lost=${[...answered].filter(u => !byUnit.has(u)).length}`)
})

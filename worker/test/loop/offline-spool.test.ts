import t from 'tap'
import { readdirSync, readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { openCoordinator, buildServer, createCampaign, createWorkerToken } from '@autoresearch-grid/coordinator'
import { experiments } from '../../../coordinator/src/db/schema.ts'
import { joinCoordinator } from '../../src/loop/join.ts'
import { HeuristicAgent } from '../../src/agent/heuristic-agent.ts'

// The coordinator goes away while a worker trains; the result waits in the worker's spool; the
// coordinator comes back on the same port with the same data; the result arrives exactly once.
const trainerDir = fileURLToPath(new URL('../../../trainer/', import.meta.url))
const TRAIN = readFileSync(join(trainerDir, 'train.py'), 'utf8')

async function freePort(): Promise<number> {
  const s = createServer()
  await new Promise<void>(resolve => s.listen(0, '127.0.0.1', resolve))
  const port = (s.address() as { port: number }).port
  await new Promise<void>(resolve => s.close(() => resolve()))
  return port
}

async function start(dir: string, port: number) {
  const app = await openCoordinator(dir, { pollMs: 200 })
  const server = await buildServer(app)
  await server.listen({ port, host: '127.0.0.1' })
  return { app, stop: async () => { await server.close(); app.close() } }
}

async function until(what: string, check: () => boolean, timeoutMs = 120_000): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise(r => setTimeout(r, 100))
  }
}

t.test('a result finished while the coordinator is down is spooled and delivered exactly once when it is back', { timeout: 300_000 }, async t => {
  const dir = t.testdir({})
  const data = join(dir, 'coordinator')
  const port = await freePort()
  let coordinator = await start(data, port)
  await createCampaign(coordinator.app, { name: 'demo', seed: { 'train.py': TRAIN }, spec: { budgetSeconds: 3, profile: 'cpu-tiny', vocabSize: 512 } })
  const token = createWorkerToken(coordinator.app, 'alice', 'alice@example.org').token
  t.teardown(() => coordinator.stop().catch(() => {}))

  const lines: string[] = []
  const stateDir = join(dir, 'worker')
  const worker = joinCoordinator({
    url: `http://127.0.0.1:${port}`, token, name: 'w1', stateDir, trainerDir, agent: new HeuristicAgent(),
    pipeline: false, maxUnits: 1, redeliverMs: 200, log: l => lines.push(l),
  })
  worker.catch(() => {})

  await until('training to start', () => lines.some(l => /^u?\S+ (baseline|explore) on demo/.test(l)))
  await coordinator.stop()
  await until('the result to be spooled and its delivery to fail', () => lines.some(l => /could not deliver/.test(l)))
  t.equal(readdirSync(join(stateDir, 'spool')).filter(f => f.endsWith('.json')).length, 1, 'the result is on disk')

  coordinator = await start(data, port)
  const summary = await worker
  t.equal(summary.units, 1)
  t.ok(lines.some(l => /connected to/.test(l) && lines.indexOf(l) > lines.findIndex(x => /could not deliver/.test(x))), 'the worker reconnected')
  t.same(readdirSync(join(stateDir, 'spool')).filter(f => f.endsWith('.json')), [], 'the spool is empty')

  const rows = coordinator.app.db.select().from(experiments).all()
  t.equal(rows.length, 1, 'exactly one experiment')
  t.ok(rows[0].valBpb && rows[0].valBpb > 0, `with its val_bpb ${rows[0].valBpb}`)
  t.equal(lines.filter(l => /: (kept|discarded|measured|baseline|recorded|waiting)/i.test(l) || /already recorded/.test(l)).length >= 1, true, lines.join('\n'))
})

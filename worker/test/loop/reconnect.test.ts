import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Report } from '@autoresearch-grid/shared'
import { createCampaign } from '@autoresearch-grid/coordinator'
import { startCoordinator } from '../../../coordinator/test/helpers.ts'
import { setCampaignStatus } from '../../../coordinator/src/campaigns/campaigns.ts'
import { events, workUnits, workers } from '../../../coordinator/src/db/schema.ts'
import { joinCoordinator } from '../../src/loop/join.ts'
import { HeuristicAgent } from '../../src/agent/heuristic-agent.ts'
import { CutProxy } from '../fixtures/cut-proxy.ts'
import { CORPUS_CAMPAIGN, CORPUS_VOCAB, sharedCorpus, trainerDir } from '../fixtures/corpus.ts'
import { sleep, until as poll } from '../../../shared/test/support/until.ts'

// A worker whose connection is cut says hello again, with the units it holds, before it takes
// work again: the coordinator re-queues at once a unit it sent into the dead connection, and keeps
// the lease of the unit the worker is training, which then finishes under that lease.
const TRAIN = readFileSync(join(trainerDir, 'train.py'), 'utf8')

t.test('after a cut the worker says hello with what it holds: a lost unit comes back at once, a held one keeps its lease', async t => {
  const corpus = await sharedCorpus()
  const c = await startCoordinator()
  t.teardown(c.close)
  await createCampaign(c.app, { name: CORPUS_CAMPAIGN, seed: { 'train.py': TRAIN }, spec: { budgetSeconds: 3, profile: 'cpu-tiny', vocabSize: CORPUS_VOCAB, noise: { policy: 'fixed', baselineRuns: 1, replications: 0 } } })
  setCampaignStatus(c.app, CORPUS_CAMPAIGN, 'paused')
  const target = new URL(c.url)
  const proxy = new CutProxy({ host: target.hostname, port: Number(target.port) })
  const url = await proxy.listen()
  t.teardown(() => proxy.close())

  const lines: string[] = []
  const reports: Report[] = []
  const until = (what: string, check: () => boolean) => poll(what, check, { everyMs: 50, describe: () => `the worker said:\n${lines.join('\n')}` })
  const hellos = () => c.app.db.select().from(events).all().filter(e => e.type === 'worker-hello').length
  const requeued = () => c.app.db.select().from(events).all().filter(e => e.type === 'units-requeued').map(e => e.payload as { units: string[]; reason: string })
  const worker = joinCoordinator({
    url, token: c.workerToken(), name: 'w1', stateDir: t.testdir({}), dataRoot: corpus.root, trainerDir, agent: new HeuristicAgent(),
    pipeline: false, maxUnits: 1, reconnectMaxMs: 500, redeliverMs: 200, deliverAttemptMs: 3000, log: l => lines.push(l), onReport: r => reports.push(r),
  })
  worker.catch(() => {})

  // Registered (hello before and after preparing), its feed open, and nothing to do yet.
  await until('the worker to register', () => hellos() >= 2)
  await sleep(1500)
  const w = c.app.db.select().from(workers).all()[0]
  const leasedTo = () => c.app.db.select().from(workUnits).all().filter(u => u.workerId === w.id && u.state === 'leased')

  // The link dies silently; the coordinator hands the worker a unit that never arrives; then the cut.
  proxy.silence()
  setCampaignStatus(c.app, CORPUS_CAMPAIGN, 'active')
  await until('a unit leased into the dead link', () => leasedTo().length === 1)
  const lost = leasedTo()[0]
  proxy.cut()
  await until('the lost unit to be re-queued by the hello', () => requeued().some(r => r.units.includes(lost.id)))
  t.equal(requeued().find(r => r.units.includes(lost.id))!.reason, 'worker restarted', 'the hello after the reconnect gave it back at once, not at its lease expiry')

  // Training a unit; the connection is cut again mid-run.
  await until('training to start', () => lines.some(l => /^\S+ (baseline|explore) on demo/.test(l)))
  const training = leasedTo()
  t.equal(training.length, 1, 'one unit in hand')
  const before = hellos()
  const requeuesBefore = requeued().length
  proxy.cut()
  const summary = await worker
  t.equal(summary.units, 1, 'the unit finished')
  t.ok(hellos() > before, 'the worker said hello again after the second cut')
  t.same(requeued().slice(requeuesBefore), [], 'and the coordinator took nothing back from it')
  t.equal(reports[0].unitId, training[0].id)
  t.equal(reports[0].leaseToken, training[0].leaseToken, 'the result came under the lease it was trained under')
  const done = c.app.db.select().from(workUnits).all().find(u => u.id === training[0].id)!
  t.match(done, { state: 'done', leaseToken: training[0].leaseToken, workerId: w.id })
  t.ok(proxy.cuts >= 2, `${proxy.cuts} connections cut`)
})

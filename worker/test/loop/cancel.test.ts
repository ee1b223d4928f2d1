import t from 'tap'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Report } from '@autoresearch-grid/shared'
import { createCampaign } from '@autoresearch-grid/coordinator'
import { startCoordinator } from '../../../coordinator/test/helpers.ts'
import { experiments, workUnits, workers } from '../../../coordinator/src/db/schema.ts'
import { joinCoordinator } from '../../src/loop/join.ts'
import { HeuristicAgent } from '../../src/agent/heuristic-agent.ts'
import { CORPUS_CAMPAIGN, CORPUS_VOCAB, sharedCorpus, trainerDir } from '../fixtures/corpus.ts'
import { until as poll } from '../../../shared/test/support/until.ts'

// Session 15: the coordinator cancels a run whose result can no longer count (a verification of a
// closed candidate) and says so on the worker's feed (AssignmentEvent `cancel`). The worker kills
// the trainer, sends no report, says `<unit>: stopped`, and takes its next unit.
const TRAIN = readFileSync(join(trainerDir, 'train.py'), 'utf8')

/** Processes whose command line names `dir` (the trainer runs in the worker's state dir). */
function processesIn(dir: string): string[] {
  const found: string[] = []
  for (const pid of readdirSync('/proc').filter(p => /^\d+$/.test(p))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ')
      if (pid !== String(process.pid) && cmd.includes(dir)) found.push(`${pid}: ${cmd.slice(0, 200)}`)
    } catch { /* gone meanwhile */ }
  }
  return found
}

t.test('a cancel from the feed stops the training run: no report, the trainer gone, and the next unit taken', async t => {
  const corpus = await sharedCorpus()
  const c = await startCoordinator()
  t.teardown(c.close)
  // A budget long enough that a run seen to end early was stopped, not finished.
  await createCampaign(c.app, { name: CORPUS_CAMPAIGN, seed: { 'train.py': TRAIN }, spec: { budgetSeconds: 20, profile: 'cpu-tiny', vocabSize: CORPUS_VOCAB, noise: { baselineRuns: 1, replications: 0 } } })
  const lines: string[] = []
  const reports: Report[] = []
  const until = <T>(what: string, check: () => T) => poll(what, check, { everyMs: 50, describe: () => `the worker said:\n${lines.join('\n')}` })
  const stateDir = t.testdir({})
  const worker = joinCoordinator({
    url: c.url, token: c.workerToken(), name: 'w1', stateDir, dataRoot: corpus.root, trainerDir, agent: new HeuristicAgent(),
    pipeline: false, maxUnits: 1, log: l => lines.push(l), onReport: r => reports.push(r),
  })
  worker.catch(() => {})

  await until('training to start', () => lines.some(l => /^\S+ (baseline|explore) on demo/.test(l)))
  const w = c.app.db.select().from(workers).all()[0]
  const running = c.app.db.select().from(workUnits).all().find(u => u.workerId === w.id && u.state === 'leased')!
  await until('the trainer to run', () => processesIn(stateDir).length > 0)
  // What the coordinator does for a closed candidate's verification (units/judge.ts), done by hand
  // here to a unit of any kind: the unit is cancelled, then its worker's feed is told.
  c.app.db.$client.prepare("update work_units set state = 'cancelled' where id = ?").run(running.id)
  c.app.bus.emit({ type: 'unit-cancelled', workerId: w.id, unitId: running.id, reason: 'its candidate was rejected: this run is not needed' })

  await until('the worker to say it stopped', () => lines.some(l => l.startsWith(`${running.id}: stopped`)))
  t.match(lines.find(l => l.startsWith(`${running.id}: stopped`)), /its candidate was rejected/, 'it says why')
  await until('the trainer to be gone', () => processesIn(stateDir).length === 0)
  t.notOk(lines.some(l => l.startsWith(`${running.id}: start-up`)), 'the run never finished')
  const summary = await worker
  t.equal(summary.units, 1, 'the worker went on to train its next unit')
  t.equal(reports.length, 1)
  t.not(reports[0].unitId, running.id, 'and reported that one only')
  t.equal(c.app.db.select().from(experiments).all().filter(e => e.unitId === running.id).length, 0, 'nothing of the cancelled run reached the coordinator')
})

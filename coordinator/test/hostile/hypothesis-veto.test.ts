import t from 'tap'
import { addHypothesis } from '../../src/hypotheses/add.ts'
import { joinWorkers, report, SEED_TRAIN_PY, startCoordinator } from '../helpers.ts'

// The scheduler hands the top open hypothesis to the next worker that asks for an exploration, and
// the report of that exploration marked it `tested`, whatever the report was. Mallory's idle worker
// took the maintainer's top idea and reported its parent's code unchanged at once (no training, no
// code stored, no rate to pay), and nobody explored the idea again. An exploration that failed on
// its worker's word (no run, a refusal, no change, a reuse) now leaves its hypothesis open, to be
// tried again on a later best, until two contributors failed it so.

t.test('a hypothesis whose exploration one contributor reported unchanged stays open; two contributors\' failures close it', async t => {
  const c = await startCoordinator()
  t.teardown(c.close)
  await c.campaign('demo', { replications: 0, baselineRuns: 1, priorSigma: 0.01 })
  const [ben] = await joinWorkers(c, ['ben'])
  t.teardown(ben.close)
  const baseline = await ben.next()
  const { id } = addHypothesis(c.app, 'demo', { title: 'warm up the learning rate for longer', source: 'maintainer', priority: 10 })
  const status = () => (c.app.db.$client.prepare('select status from hypotheses where id = ?').get(id) as { status: string }).status

  const [mallory] = await joinWorkers(c, ['mallory'])
  const hers = await mallory.next()
  t.equal(hers.hypothesis?.id, id, 'mallory, idle, is handed the maintainer\'s top idea')
  const veto = await mallory.api.worker.report.mutate({ workerId: mallory.workerId, report: report(hers, 1.5) }) // the parent's code, as given
  t.match(veto.decision, /no change/)
  mallory.close()
  t.equal(status(), 'open', 'an exploration that changed nothing tried nothing: the idea stays open')

  // The best moves on (ben's change merges on his own claim: replications 0).
  await ben.api.worker.report.mutate({ workerId: ben.workerId, report: report(baseline, 1.5) })
  const mine = await ben.next()
  await ben.api.worker.report.mutate({ workerId: ben.workerId, report: report(mine, 1.4, SEED_TRAIN_PY.replace('DEPTH = 4', 'DEPTH = 5')) })
  const newBaseline = await ben.next()
  ben.stopFeed() // ben takes no more work
  await ben.api.worker.report.mutate({ workerId: ben.workerId, report: report(newBaseline, 1.4) })

  const [cat] = await joinWorkers(c, ['cat'])
  t.teardown(cat.close)
  const again = await cat.next()
  t.equal(again.hypothesis?.id, id, 'on the new best the idea is handed out again, to cat')
  await cat.api.worker.report.mutate({ workerId: cat.workerId, report: report(again, null, SEED_TRAIN_PY.replace('DEPTH = 4', 'DEPTH = 5').replace('print', 'raise SystemExit; print')) })
  t.equal(status(), 'tested', 'failed by a second contributor (a crash), it is closed')
})

import t from 'tap'
import { joinWorkers, report, SEED_TRAIN_PY, startCoordinator } from '../helpers.ts'

// A candidate's code is public (its commit on the git endpoint, its diff on the dashboard), and an
// exploration may report any code. Mallory reported exactly Ann's pending change, on the same
// parent. Whichever merged first, the other went stale and was merged onto the new best, which
// already held the change: a candidate with no change, verified by honest workers and judged as
// one (under `parallel` with the evidence it carried), the very null candidate the ratchet refuses
// from a report (docs/RATCHET.md, rule 0). Honest duplicates (two agents making the same edit) did
// the same. A stale change the best already holds is now discarded as `no-change`.

const edit = SEED_TRAIN_PY.replace('DEPTH = 4', 'DEPTH = 6')

t.test('a stale change that the new best already holds is discarded, not verified again as a candidate', async t => {
  const c = await startCoordinator()
  t.teardown(c.close)
  await c.campaign('demo', { replications: 0, baselineRuns: 1, priorSigma: 0.01 })
  const [ann, mallory, ben] = await joinWorkers(c, ['ann', 'mallory', 'ben'])
  t.teardown(() => [ann, mallory, ben].forEach(w => w.close()))
  await ann.api.worker.report.mutate({ workerId: ann.workerId, report: report(await ann.next(), 1.50) })
  const [ua, um] = [await ann.next(), await mallory.next()]
  t.equal(ua.parentCommit, um.parentCommit, 'both explore the seed')
  const merged = await ann.api.worker.report.mutate({ workerId: ann.workerId, report: report(ua, 1.45, edit) })
  t.match(merged.decision, /merged|kept|review/, 'ann\'s change merges')
  const copy = await mallory.api.worker.report.mutate({ workerId: mallory.workerId, report: report(um, 1.44, edit) })
  const row = c.app.db.$client.prepare('select status, reason, decision from experiments where id = ?').get(copy.experimentId) as { status: string; reason: string; decision: string }
  t.equal(row.status, 'discarded', 'mallory\'s copy, stale, is closed')
  t.equal(row.reason, 'no-change')
  t.match(row.decision, /already/, 'saying the best holds its change already')
  const carried = c.app.db.$client.prepare("select count(*) as n from experiments where kind = 'rebase'").get() as { n: number }
  t.equal(carried.n, 0, 'no candidate of the best\'s own code is made')
  const verifications = c.app.db.$client.prepare("select count(*) as n from work_units where kind = 'verify'").get() as { n: number }
  t.equal(verifications.n, 0, 'and nobody is asked to verify one')
})

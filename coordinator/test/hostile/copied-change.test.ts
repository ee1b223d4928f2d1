import t from 'tap'
import { joinWorkers, report, SEED_TRAIN_PY, startCoordinator } from '../helpers.ts'

// A candidate's code is public (its commit on the git endpoint, its diff on the dashboard), and an
// exploration may report any code. Mallory reported exactly Ann's pending change, on the same
// parent: a second candidate of the same code, judged on its own, which could merge first under
// her name; and whichever merged first, the other went stale and was merged onto the new best,
// which already held the change: a candidate with no change, verified by honest workers and judged
// as one (under `parallel` with the evidence it carried), the very null candidate the ratchet
// refuses from a report (docs/RATCHET.md, rule 0). Honest duplicates, and a change contained in
// another, did the same. Now a copy of a live candidate on the same parent is discarded as a
// `duplicate` when reported, and a stale change the best already holds as `no-change`.

const edit = SEED_TRAIN_PY.replace('DEPTH = 4', 'DEPTH = 6')
const more = edit.replace('MATRIX_LR = 0.02', 'MATRIX_LR = 0.03')

t.test('a stale change that the new best already holds is discarded, not verified again as a candidate', async t => {
  const c = await startCoordinator()
  t.teardown(c.close)
  await c.campaign('demo', { replications: 0, baselineRuns: 1, priorSigma: 0.01 })
  const [ann, mallory, ben] = await joinWorkers(c, ['ann', 'mallory', 'ben'])
  t.teardown(() => [ann, mallory, ben].forEach(w => w.close()))
  await ann.api.worker.report.mutate({ workerId: ann.workerId, report: report(await ann.next(), 1.50) })
  const [ua, um] = [await ann.next(), await mallory.next()]
  t.equal(ua.parentCommit, um.parentCommit, 'both explore the seed')
  const merged = await ann.api.worker.report.mutate({ workerId: ann.workerId, report: report(ua, 1.45, more) })
  t.match(merged.decision, /merged|kept|review/, 'ann\'s change (depth and learning rate) merges')
  const copy = await mallory.api.worker.report.mutate({ workerId: mallory.workerId, report: report(um, 1.44, edit) }) // the depth half of it
  const row = c.app.db.$client.prepare('select status, reason, decision from experiments where id = ?').get(copy.experimentId) as { status: string; reason: string; decision: string }
  t.equal(row.status, 'discarded', 'mallory\'s copy, stale, is closed')
  t.equal(row.reason, 'no-change')
  t.match(row.decision, /already/, 'saying the best holds its change already')
  const carried = c.app.db.$client.prepare("select count(*) as n from experiments where kind = 'rebase'").get() as { n: number }
  t.equal(carried.n, 0, 'no candidate of the best\'s own code is made')
  const verifications = c.app.db.$client.prepare("select count(*) as n from work_units where kind = 'verify'").get() as { n: number }
  t.equal(verifications.n, 0, 'and nobody is asked to verify one')
})

t.test('a copy of a candidate still in the race on the same parent is no candidate of its own', async t => {
  const c = await startCoordinator()
  t.teardown(c.close)
  await c.campaign('demo', { replications: 1, baselineRuns: 1, priorSigma: 0.01 })
  const [ann, mallory, ben] = await joinWorkers(c, ['ann', 'mallory', 'ben'])
  t.teardown(() => [ann, mallory, ben].forEach(w => w.close()))
  await ann.api.worker.report.mutate({ workerId: ann.workerId, report: report(await ann.next(), 1.50) })
  const [ua, um] = [await ann.next(), await mallory.next()]
  const original = await ann.api.worker.report.mutate({ workerId: ann.workerId, report: report(ua, 1.45, edit) })
  t.match(original.decision, /^verify/, 'ann\'s claim waits for a verification')
  const copy = await mallory.api.worker.report.mutate({ workerId: mallory.workerId, report: report(um, 1.40, edit) })
  t.match(copy.decision, /^discarded: the same code as candidate .* still in the race/, 'mallory\'s copy of it, with a better number, is discarded at once')
  const q = (id: string) => c.app.db.$client.prepare('select status, reason, val_bpb as v from experiments where id = ?').get(id) as { status: string; reason: string; v: number | null }
  t.same(q(copy.experimentId), { status: 'discarded', reason: 'duplicate', v: null }, 'on record, not evidence')
  const verifying = c.app.db.$client.prepare("select count(*) as n from work_units where kind = 'verify' and target_experiment = ?").get(copy.experimentId) as { n: number }
  t.equal(verifying.n, 0, 'nobody verifies the copy')
  t.equal(q(original.experimentId).status, 'pending', 'ann\'s candidate is judged as before')
})

import t from 'tap'
import type { Test } from 'tap'
import type { AssignmentEvent, WorkUnit } from '@autoresearch-grid/shared'
import { CPU, joinWorkers, report, SEED_TRAIN_PY, startCoordinator, wsClient } from '../helpers.ts'

// A promising change whose parent was replaced, and which conflicts with the new best, becomes a
// `rebase` unit: one worker re-applies the idea on the best (units/merge.ts mergeStale). Any
// contributor's worker may take it, and its report was the idea's only follow-up: Mallory took a
// rival's rebase and reported a crash at once (no training needed), or a number that failed the
// screen, and the rival's idea, promising on its own parent, was never tried on the best again.
// One contributor's word now ends nobody else's idea: a rebase that fails on its worker's word
// alone is queued again for another contributor, until two contributors (or three runs) failed it.

const edit = (from: string, to: string) => SEED_TRAIN_PY.replace(from, to)

type Coordinator = Awaited<ReturnType<typeof startCoordinator>>

async function mallory(c: Coordinator, t: Test) {
  const { api, close } = wsClient(c.url, c.workerToken('mallory'))
  t.teardown(close)
  const { workerId } = await api.worker.hello.mutate({ name: 'm0', hardware: CPU, fingerprints: {}, version: 't' })
  const units: WorkUnit[] = []
  const sub = api.worker.assignments.subscribe({ workerId }, { onData: (e: AssignmentEvent) => { if (e.type === 'unit') units.push(e.unit) } })
  t.teardown(() => sub.unsubscribe())
  const next = async () => { while (!units.length) await new Promise(r => setTimeout(r, 20)); return units.shift()! }
  return { api, workerId, next }
}

/** Ann's change merges; Ben's, promising on the seed, conflicts with it and waits for a rebase. */
async function rivalRebaseQueued(t: Test) {
  const c = await startCoordinator()
  t.teardown(c.close)
  await c.campaign('demo', { replications: 0, baselineRuns: 1, priorSigma: 0.01 })
  const [ann, ben, cat] = await joinWorkers(c, ['ann', 'ben', 'cat'])
  t.teardown(() => [ann, ben, cat].forEach(w => w.close()))
  await ann.api.worker.report.mutate({ workerId: ann.workerId, report: report(await ann.next(), 1.50) })
  const [ua, ub] = [await ann.next(), await ben.next()]
  const catHolds = await cat.next() // cat holds an exploration of the seed: she is at work on the class
  await ann.api.worker.report.mutate({ workerId: ann.workerId, report: report(ua, 1.45, edit('DEPTH = 4', 'DEPTH = 6')) })
  const baseline = await ann.next()
  t.equal(baseline.kind, 'baseline', 'ann measures the new best')
  await ann.api.worker.report.mutate({ workerId: ann.workerId, report: report(baseline, 1.45) })
  await ann.next() // and holds an exploration of it
  ben.stopFeed() // ben takes no more work: the rebase of his idea waits for whoever asks
  const stale = await ben.api.worker.report.mutate({ workerId: ben.workerId, report: report(ub, 1.44, edit('DEPTH = 4', 'DEPTH = 8')) })
  t.match(stale.decision, /^stale/, 'ben\'s change was promising on the seed, whose best moved on')
  const rebases = () => c.app.db.$client.prepare("select id, state from work_units where kind = 'rebase' and target_experiment = ? order by created_at").all(stale.experimentId) as { id: string; state: string }[]
  t.equal(rebases().length, 1, 'it conflicts with the new best: a rebase unit is queued')
  return { c, cat, catHolds, origin: stale.experimentId, rebases }
}

t.test('a rival\'s rebase reported as a crash is queued again for another contributor', async t => {
  const { c, cat, catHolds, origin, rebases } = await rivalRebaseQueued(t)
  const m = await mallory(c, t)
  const taken = await m.next()
  t.equal(taken.kind, 'rebase', 'mallory, idle, takes the rebase of ben\'s idea')
  await m.api.worker.report.mutate({ workerId: m.workerId, report: { ...report(taken, null), description: 'could not re-apply' } })

  const after = rebases()
  t.equal(after.length, 2, 'a crashed rebase on one contributor\'s word is not the end of the idea: another is queued')
  t.equal(after[1].state, 'queued')
  const excluded = c.app.db.$client.prepare('select excluded_contributors as x from work_units where id = ?').get(after[1].id) as { x: string }
  const mal = (c.app.db.$client.prepare("select id from contributors where name = 'mallory'").get() as { id: string }).id
  t.ok(JSON.parse(excluded.x).includes(mal), 'mallory may not take it again')
  // Mallory asks again: she gets no rebase of ben's idea.
  await m.api.worker.report.mutate({ workerId: m.workerId, report: report(await m.next(), 1.6, edit('MATRIX_LR = 0.02', 'MATRIX_LR = 0.07')) }).catch(() => null)
  const hers = c.app.db.$client.prepare("select count(*) as n from work_units u join workers w on w.id = u.worker_id where u.kind = 'rebase' and w.name = 'm0'").get() as { n: number }
  t.equal(hers.n, 1, 'her only rebase is the one she crashed')
  // Cat, another contributor, finishes her exploration and is handed the new rebase.
  await cat.api.worker.report.mutate({ workerId: cat.workerId, report: report(catHolds, 1.52, edit('MATRIX_LR = 0.02', 'MATRIX_LR = 0.05')) })
  const next = await cat.next()
  t.equal(next.kind, 'rebase', 'another contributor re-applies ben\'s idea')
  t.equal(next.id, after[1].id)
  t.comment(`RESULT rebases of ${origin}: ${rebases().map(r => r.state).join(', ')}`)
})

t.test('a rival\'s rebase reported as a change that failed the screen is queued again; two contributors\' failures end it', async t => {
  const { c, cat, catHolds, rebases } = await rivalRebaseQueued(t)
  const m = await mallory(c, t)
  const taken = await m.next()
  t.equal(taken.kind, 'rebase')
  const bad = await m.api.worker.report.mutate({ workerId: m.workerId, report: report(taken, 1.9, edit('DEPTH = 6', 'DEPTH = 8')) })
  t.match(bad.decision, /^discarded: not promising/, 'her forged number fails the screen')
  t.equal(rebases().length, 2, 'the idea gets another rebase, by someone else')
  await cat.api.worker.report.mutate({ workerId: cat.workerId, report: report(catHolds, 1.52, edit('MATRIX_LR = 0.02', 'MATRIX_LR = 0.05')) })
  const again = await cat.next()
  t.equal(again.kind, 'rebase')
  const honest = await cat.api.worker.report.mutate({ workerId: cat.workerId, report: report(again, 1.9, edit('DEPTH = 6', 'DEPTH = 8')) })
  t.match(honest.decision, /^discarded: not promising/, 'it does not help on the new best for cat either')
  t.equal(rebases().length, 2, 'failed by two contributors, the idea gets no third rebase')
})

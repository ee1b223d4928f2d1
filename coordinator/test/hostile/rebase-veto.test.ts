import t from 'tap'
import { report } from '../helpers.ts'
import { edit, mallory, rivalRebaseQueued } from './rival-rebase.ts'

// A promising change whose parent was replaced, and which conflicts with the new best, becomes a
// `rebase` unit: one worker re-applies the idea on the best (units/merge.ts mergeStale). Any
// contributor's worker may take it, and its report was the idea's only follow-up: Mallory took a
// rival's rebase and reported a crash at once (no training needed), or a number that failed the
// screen, and the rival's idea, promising on its own parent, was never tried on the best again.
// One contributor's word now ends nobody else's idea: a rebase that fails on its worker's word
// alone is queued again for another contributor, until two contributors (or three runs) failed it.

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

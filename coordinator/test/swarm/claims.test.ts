import t, { type Test } from 'tap'
import { sourceHash } from '@autoresearch-grid/shared'
import { joinWorkers, report, SEED_TRAIN_PY, startCoordinator } from '../helpers.ts'
import { FRESH_AFTER_REPORT_MS } from '../../src/swarm/read.ts'

// Claims and the swarm view through the real API: a candidate chosen by one worker's agent is
// known to every other agent before anyone trained it, and the coordinator refuses the same code
// on the same parent a second time, in flight or measured.
const EDIT = SEED_TRAIN_PY.replace('MATRIX_LR = 0.02', 'MATRIX_LR = 0.03')
const OTHER = SEED_TRAIN_PY.replace('DEPTH = 4', 'DEPTH = 5')
const claimOf = (files: string, description: string) => ({ sourceHash: sourceHash({ 'train.py': files }), description, changes: [], agent: 'heuristic' })

/** A coordinator, two workers of two contributors, the seed baselined by ann, and one exploration of it each (ann's first). */
async function twoExplorations(t: Test) {
  const c = await startCoordinator()
  t.teardown(c.close)
  await c.campaign()
  const [ann, ben] = await joinWorkers(c, ['ann', 'ben'])
  t.teardown(() => { ann.close(); ben.close() })
  await ann.api.worker.report.mutate({ workerId: ann.workerId, report: report(await ann.next(), 1.5) })
  const u1 = await ann.next()
  const u2 = await ben.next()
  return { c, ann, ben, u1, u2 }
}

t.test('claims: the same candidate on the same parent is refused while in flight and once measured; the view and the search show it all', async t => {
  const { ann, ben, u1, u2 } = await twoExplorations(t)
  t.same([u1.kind, u2.kind, u1.parentCommit], ['explore', 'explore', u2.parentCommit], 'two explorations of the same parent')
  t.ok(u1.swarm, 'an exploration carries the swarm view')

  const claim = (w: typeof ann, unit: typeof u1, files: string, description: string) =>
    w.api.swarm.claim.mutate({ workerId: w.workerId, unitId: unit.id, leaseToken: unit.leaseToken, ...claimOf(files, description), changes: ['MATRIX_LR 0.02 -> 0.03'] })
  t.same(await claim(ann, u1, EDIT, 'MATRIX_LR 0.02 -> 0.03'), { duplicateOf: null }, 'the first claim of a candidate holds')
  const dup = await claim(ben, u2, EDIT, 'raise the lr')
  t.same(dup.duplicateOf, { id: u1.id, description: 'MATRIX_LR 0.02 -> 0.03', status: 'in-flight', valBpb: null }, 'the same code on the same parent, in flight: refused')
  t.same(await claim(ben, u2, OTHER, 'DEPTH 4 -> 5'), { duplicateOf: null }, 'something else is fine')
  await t.rejects(ben.api.swarm.claim.mutate({ workerId: ben.workerId, unitId: u1.id, leaseToken: u1.leaseToken, ...claimOf(OTHER, 'x') }), /not leased to this worker/, 'only for a unit one holds')

  const measured = { ...report(u1, 1.6, EDIT), description: 'MATRIX_LR 0.02 -> 0.03', diff: '--- a/train.py\n+++ b/train.py\n-MATRIX_LR = 0.02\n+MATRIX_LR = 0.03\n', agentNotes: 'a higher lr, maybe' }
  const r = await ann.api.worker.report.mutate({ workerId: ann.workerId, report: measured })
  const u3 = await ann.next()
  t.equal(u3.parentCommit, u1.parentCommit, 'a worse candidate leaves the parent where it was')
  const seen = u3.swarm!.nearby
  t.same(seen.map(e => [e.id, e.status]), [[u2.id, 'in-flight'], [r.experimentId, 'discarded']], "ben's candidate in flight, ann's measured")
  t.match(seen[1], { onParent: true, valBpb: 1.6, changes: ['MATRIX_LR 0.02 -> 0.03'], agent: 'heuristic', notes: 'a higher lr, maybe' })
  t.ok(Math.abs(seen[1].delta! - 0.1) < 1e-9, 'Δ against the parent\'s baseline')
  t.same(seen[0].changes, ['MATRIX_LR 0.02 -> 0.03'], 'a claim shows the changes its worker named')
  const again = await claim(ann, u3, EDIT, 'MATRIX_LR 0.02 -> 0.03 once more')
  t.match(again.duplicateOf, { id: r.experimentId, status: 'discarded', valBpb: 1.6 }, 'measured on this parent: refused')

  const search = (query: Record<string, unknown>) => ann.api.swarm.search.query({ workerId: ann.workerId, campaign: 'demo', query })
  t.same((await search({ constant: 'MATRIX_LR' })).map(e => e.id), [r.experimentId], 'by a constant the edit changed')
  t.same(await search({ constant: 'DEPTH' }), [], 'a constant nobody changed')
  t.same((await search({ text: 'HIGHER lr' })).map(e => e.id), [r.experimentId], 'by words in the notes, any case')
  t.same(await search({ status: 'kept' }), [], 'by status')
  t.same((await search({ parent: u1.parentCommit.slice(0, 8) })).map(e => e.id), [r.experimentId], 'by parent')
  await t.rejects(search({ constant: 'lower case' }), /Invalid|constant/, 'bad queries are refused')
})

t.test('a report shows in the swarm view of every unit handed out FRESH_AFTER_REPORT_MS after it, though a view was cached before it', async t => {
  // Ben's unit caches the view of the parent, right before ann's report.
  const { ann, ben, u1, u2 } = await twoExplorations(t)
  t.equal(u2.parentCommit, u1.parentCommit)
  const r = await ann.api.worker.report.mutate({ workerId: ann.workerId, report: { ...report(u1, 1.6, EDIT), description: 'MATRIX_LR 0.02 -> 0.03' } })
  await new Promise(resolve => setTimeout(resolve, FRESH_AFTER_REPORT_MS + 50))
  // Ann's next unit was pushed to her feed with her report's answer, at once (its view may not show
  // the report yet); ben's next one is handed out now, after his own report.
  await ben.api.worker.report.mutate({ workerId: ben.workerId, report: { ...report(u2, 1.55, OTHER), description: 'DEPTH 4 -> 5' } })
  const u4 = await ben.next()
  t.equal(u4.parentCommit, u1.parentCommit, 'worse candidates leave the parent where it was')
  t.ok(u4.swarm!.nearby.some(e => e.id === r.experimentId), "ann's measured candidate is in the view")
})

import t from 'tap'
import { sourceHash } from '@autoresearch-grid/shared'
import { joinWorkers, report, SEED_TRAIN_PY, startCoordinator } from '../helpers.ts'

// DESIGN §8: "an identical train.py (same source hash) on the same class is never trained twice:
// its earlier measurement is reused". The worker asks `worker.known` before training; when the
// answer is yes it reports the reuse, and the coordinator records the unit without a new sample.

t.test('a candidate identical to a measured source is recorded as a reuse: no new measurement, no decision to make', async t => {
  const c = await startCoordinator()
  t.teardown(c.close)
  await c.campaign()
  const [a] = await joinWorkers(c, ['ann'])
  t.teardown(a.close)
  const baseline = await a.api.worker.report.mutate({ workerId: a.workerId, report: report(await a.next(), 1.5) })
  const unit = await a.next()
  t.equal(unit.kind, 'explore')
  const known = await a.api.worker.known.query({ workerId: a.workerId, campaign: 'demo', sourceHash: sourceHash(unit.source) })
  t.equal(known?.experimentId, baseline.experimentId, 'the parent, unchanged, is known: the baseline measured it')
  const reuse = { ...report(unit, null), status: 'ok' as const, description: 'no change', reused: { experimentId: known!.experimentId } }
  const answer = await a.api.worker.report.mutate({ workerId: a.workerId, report: reuse })
  t.match(answer.decision, new RegExp(`^not trained: identical to experiment ${baseline.experimentId} \\(val_bpb 1\\.500000, measured\\)`))
  const db = c.app.db.$client
  const row = db.prepare('select status, val_bpb as valBpb, "commit" from experiments where id = ?').get(answer.experimentId) as { status: string; valBpb: number | null; commit: string }
  t.same({ status: row.status, valBpb: row.valBpb }, { status: 'discarded', valBpb: null }, 'recorded without a number of its own')
  t.equal((db.prepare('select count(*) as n from measurements').get() as { n: number }).n, 1, 'the baseline is still the only measurement')
  t.equal((db.prepare('select state from work_units where id = ?').get(unit.id) as { state: string }).state, 'done', 'the unit is done')
  const again = await a.api.worker.report.mutate({ workerId: a.workerId, report: reuse })
  t.same([again.duplicate, again.experimentId], [true, answer.experimentId], 'resent: a duplicate, like any report')
  const next = await a.next()
  t.equal(next.kind, 'explore', 'the worker gets its next unit')
})

t.test('a reuse that does not hold up is refused with what to do', async t => {
  const c = await startCoordinator()
  t.teardown(c.close)
  await c.campaign('demo', { replications: 0, baselineRuns: 2 })
  const [a] = await joinWorkers(c, ['ann'])
  t.teardown(a.close)
  const first = await a.next()
  const measured = await a.api.worker.report.mutate({ workerId: a.workerId, report: report(first, 1.5) })
  const second = await a.next()
  t.equal(second.kind, 'baseline')
  await t.rejects(a.api.worker.report.mutate({ workerId: a.workerId, report: { ...report(second, null), status: 'ok', reused: { experimentId: measured.experimentId } } }),
    /a baseline unit exists to measure its code again: train it/, 'baselines and verifications are never reused')
  await a.api.worker.report.mutate({ workerId: a.workerId, report: report(second, 1.5) })
  const explore = await a.next()
  await t.rejects(a.api.worker.report.mutate({ workerId: a.workerId, report: { ...report(explore, null, `${SEED_TRAIN_PY}# changed\n`), status: 'ok', reused: { experimentId: measured.experimentId } } }),
    /did not measure this source on cpu-x86_64: train it/, 'a reuse must name an experiment that measured exactly this source')
})

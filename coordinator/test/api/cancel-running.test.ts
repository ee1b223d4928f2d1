import t from 'tap'
import type { AssignmentEvent, WorkUnit } from '@autoresearch-grid/shared'
import { CPU, report, SEED_TRAIN_PY, startCoordinator, wsClient } from '../helpers.ts'
import { until } from '../../../shared/test/support/until.ts'
import { createUnit, getUnit, leaseUnit, newLeaseToken } from '../../src/units/lifecycle.ts'

// Session 15: a verification that a worker is running when its candidate is closed (rejected or
// discarded) is cancelled, and the worker is told at once over its feed (AssignmentEvent `cancel`),
// so its GPU stops rather than finish a run nobody will read. A merged candidate's runs go on.

const edit = (from: string, to: string) => SEED_TRAIN_PY.replace(from, to)

type Coordinator = Awaited<ReturnType<typeof startCoordinator>>

/** A worker with its own contributor and feed, keeping every event the feed sends. */
async function worker(c: Coordinator, name: string, teardown: (fn: () => void) => void) {
  const { api, close } = wsClient(c.url, c.workerToken(name))
  teardown(close)
  const { workerId } = await api.worker.hello.mutate({ name, hardware: CPU, fingerprints: {}, version: 't' })
  const units: WorkUnit[] = []
  const events: AssignmentEvent[] = []
  const sub = api.worker.assignments.subscribe({ workerId }, { onData: e => { events.push(e); if (e.type === 'unit') units.push(e.unit) } })
  teardown(() => sub.unsubscribe())
  let taken = 0
  /** The next unit its feed hands out, in order. */
  const next = () => until(`a unit for ${name}`, () => units[taken] && units[taken++], { everyMs: 20 })
  return { name, api, workerId, units, events, next }
}
type W = Awaited<ReturnType<typeof worker>>

const send = (w: W, unit: WorkUnit, valBpb: number | null, code?: string) => w.api.worker.report.mutate({ workerId: w.workerId, report: report(unit, valBpb, code) })

t.test('a rejected candidate\'s running verification is cancelled: its worker is told at once, its late report refused, and it gets new work', async t => {
  const c = await startCoordinator()
  t.teardown(c.close)
  await c.campaign('demo', { replications: 3, baselineRuns: 2, priorSigma: 0.01 })
  const ann = await worker(c, 'ann', fn => t.teardown(fn))
  const ben = await worker(c, 'ben', fn => t.teardown(fn))
  const dee = await worker(c, 'dee', fn => t.teardown(fn))
  const eve = await worker(c, 'eve', fn => t.teardown(fn))
  const [ua, ub, ud, ue] = [await ann.next(), await ben.next(), await dee.next(), await eve.next()]
  t.same([ua.kind, ub.kind, ud.kind, ue.kind], ['baseline', 'baseline', 'explore', 'explore'])
  await send(ann, ua, 1.500)
  await send(ben, ub, 1.502)
  const claim = await send(ann, await ann.next(), 1.45, edit('DEPTH = 4', 'DEPTH = 6'))
  t.match(claim.decision, /^verify/, 'ann\'s claim asks for three verifications')
  // The others finish what they hold (no improvement), then verify ann's claim.
  await send(ben, await ben.next(), 1.51, edit('MATRIX_LR = 0.02', 'MATRIX_LR = 0.01'))
  await send(dee, ud, 1.51, edit('MATRIX_LR = 0.02', 'MATRIX_LR = 0.04'))
  await send(eve, ue, 1.51, edit('MATRIX_LR = 0.02', 'MATRIX_LR = 0.05'))
  const [vb, vd, ve] = [await ben.next(), await dee.next(), await eve.next()]
  t.same([vb.kind, vd.kind, ve.kind], ['verify', 'verify', 'verify'])
  // Two other contributors' runs crash: the candidate is rejected (ratchet/decide.ts failedElsewhere)
  // while dee's run of it is still going.
  await send(ben, vb, null)
  await send(eve, ve, null)
  const exp = await ann.api.dashboard.experiment.query({ id: claim.experimentId })
  t.equal(exp?.status, 'rejected', 'the candidate is rejected')
  const cancel = await until('dee\'s feed to say cancel', () => dee.events.find(e => e.type === 'cancel'), { everyMs: 20 })
  t.match(cancel, { type: 'cancel', unitId: vd.id, reason: new RegExp(`its candidate ${claim.experimentId} was rejected`) }, 'dee is told to stop its run')
  t.equal(getUnit(c.app.db, vd.id)?.state, 'cancelled', 'the unit is cancelled')
  t.notOk(ann.events.some(e => e.type === 'cancel'), 'nobody else is told')
  await t.rejects(send(dee, vd, 1.44), { message: `work unit "${vd.id}" was cancelled` }, 'a report that comes anyway is refused')
  t.equal((c.app.db.$client.prepare('select count(*) as n from experiments where unit_id = ?').get(vd.id) as { n: number }).n, 0, 'and nothing of it is stored')
  const beat = await dee.api.worker.heartbeat.mutate({ workerId: dee.workerId, units: [{ unitId: vd.id, leaseToken: vd.leaseToken, progress: null }] })
  t.same(beat.cancelled, [vd.id], 'a heartbeat naming it hears the same')
  const fresh = await dee.next()
  t.not(fresh.id, vd.id, 'dee gets new work for the room freed')
  t.ok(dee.events.findIndex(e => e.type === 'cancel') < dee.events.findIndex(e => e.type === 'unit' && e.unit.id === fresh.id), 'after the cancel')
})

t.test('a merged candidate\'s running verification runs on, and its report counts as a run of the new best', async t => {
  const c = await startCoordinator()
  t.teardown(c.close)
  await c.campaign('demo', { replications: 2, baselineRuns: 2, priorSigma: 0.01 })
  const ann = await worker(c, 'ann', fn => t.teardown(fn))
  const ben = await worker(c, 'ben', fn => t.teardown(fn))
  const dee = await worker(c, 'dee', fn => t.teardown(fn))
  const eve = await worker(c, 'eve', fn => t.teardown(fn))
  const [ua, ub, ud, ue] = [await ann.next(), await ben.next(), await dee.next(), await eve.next()]
  await send(ann, ua, 1.500)
  await send(ben, ub, 1.502)
  const claim = await send(ann, await ann.next(), 1.45, edit('DEPTH = 4', 'DEPTH = 6'))
  await send(ben, await ben.next(), 1.51, edit('MATRIX_LR = 0.02', 'MATRIX_LR = 0.01'))
  await send(dee, ud, 1.51, edit('MATRIX_LR = 0.02', 'MATRIX_LR = 0.04'))
  await send(eve, ue, 1.51, edit('MATRIX_LR = 0.02', 'MATRIX_LR = 0.05'))
  // Two of the three verify (whichever the draw picked, units/verifier-draw.ts); the third explores.
  const held = await Promise.all([ben, dee, eve].map(async w => ({ w, unit: await w.next() })))
  const [v1, v2] = held.filter(h => h.unit.kind === 'verify')
  const spare = held.find(h => h.unit.kind !== 'verify')!.w
  t.ok(v1 && v2 && spare, 'two verify, one explores')
  // A third run of the candidate that the spare worker is running when it merges (as one asked for
  // by a replacement or a further look would be): made here, so the test does not wait on the scheduler.
  const row = getUnit(c.app.db, v1.unit.id)!
  const extra = createUnit(c.app.db, { kind: 'verify', campaign: 'demo', hypothesisId: null, parentCommit: row.parentCommit, targetCommit: row.targetCommit,
    targetExperiment: claim.experimentId, hardwareClass: row.hardwareClass }, Date.now())
  const token = newLeaseToken()
  leaseUnit(c.app.db, extra.id, { workerId: spare.workerId, token, expiresAt: Date.now() + 600_000 }, Date.now())
  await send(v1.w, v1.unit, 1.452)
  await send(v2.w, v2.unit, 1.448)
  t.equal((await ann.api.dashboard.experiment.query({ id: claim.experimentId }))?.status, 'kept', 'the candidate is merged')
  t.equal(getUnit(c.app.db, extra.id)?.state, 'leased', `${spare.name}'s run of it is not cancelled`)
  t.notOk(spare.events.some(e => e.type === 'cancel'), 'nor is it told to stop')
  const late = await spare.api.worker.report.mutate({ workerId: spare.workerId, report: report({ id: extra.id, leaseToken: token, source: v1.unit.source }, 1.449) })
  t.match(late.decision, /^measured/, 'its late report is recorded')
  const best = (c.app.db.$client.prepare("select best_commit as b from campaigns where name = 'demo'").get() as { b: string }).b
  const onBest = c.app.db.$client.prepare("select val_bpb as v, kind from measurements where \"commit\" = ? order by val_bpb").all(best)
  t.same(onBest, [{ v: 1.448, kind: 'verify' }, { v: 1.449, kind: 'verify' }, { v: 1.452, kind: 'verify' }],
    'and it counts as a run of the branch commit the merge made, beside the two it had when it merged')
})

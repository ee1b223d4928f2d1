import t from 'tap'
import { joinWorkers, report, SEED_TRAIN_PY, startCoordinator } from '../helpers.ts'

// Heartbeats renew a lease. Without a bound on how long, a contributor drawn to verify a rival's
// candidate could keep beating for the unit and never report it: the candidate waited for that
// verification for good (and the same for an exploration of a hypothesis, which nobody else may
// take while it is in flight, or a baseline of the best). A lease is now renewed for at most
// units/leases.ts's `maxHoldSeconds`; a short one here.

const HOLD_SECONDS = 2

t.test('a verification kept alive by heartbeats and never reported goes back to the queue after the hold bound; the squatter\'s report is refused', async t => {
  const c = await startCoordinator({ maxLeaseHoldSeconds: HOLD_SECONDS })
  t.teardown(c.close)
  await c.campaign('demo', { replications: 1, baselineRuns: 1 })
  const [ben, mallory] = await joinWorkers(c, ['ben', 'mallory'])
  t.teardown(() => [ben, mallory].forEach(w => w.close()))
  await ben.api.worker.report.mutate({ workerId: ben.workerId, report: report(await ben.next(), 1.5) })
  const claim = await ben.api.worker.report.mutate({ workerId: ben.workerId, report: report(await ben.next(), 1.45, SEED_TRAIN_PY.replace('DEPTH = 4', 'DEPTH = 5')) })
  t.match(claim.decision, /^verify/)
  let v = await mallory.next()
  while (v.kind !== 'verify') {
    await mallory.api.worker.report.mutate({ workerId: mallory.workerId, report: report(v, null) })
    v = await mallory.next()
  }
  // Mallory beats for it, well past the bound, and never trains it.
  const beat = { workerId: mallory.workerId, units: [{ unitId: v.id, leaseToken: v.leaseToken, progress: { step: 1, percent: 1, loss: null, remainingSeconds: null } }] }
  let cancelled = false
  // Any heartbeat after the bound is told: the cap only ends a test that would otherwise hang, and
  // is far past the bound so that a slow, loaded machine cannot fail it.
  const until = Date.now() + (HOLD_SECONDS + 120) * 1000
  while (!cancelled && Date.now() < until) {
    cancelled = (await mallory.api.worker.heartbeat.mutate(beat)).cancelled.includes(v.id)
    await new Promise(r => setTimeout(r, 250))
  }
  t.ok(cancelled, 'a heartbeat past the bound is told to drop the unit')
  const token = (c.app.db.$client.prepare('select lease_token as t from work_units where id = ?').get(v.id) as { t: string }).t
  t.not(token, v.leaseToken, 'the unit has a new lease token')
  await t.rejects(mallory.api.worker.report.mutate({ workerId: mallory.workerId, report: report(v, 1.6) }), /re-assigned/, 'a report under the old lease is refused')
  const events = c.app.db.$client.prepare("select payload from events where type = 'lease-held-too-long'").all() as { payload: string }[]
  t.equal(events.length, 1, 'the event log says why')
})

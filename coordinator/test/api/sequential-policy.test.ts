import t, { type Test } from 'tap'
import { joinWorkers, report, SEED_TRAIN_PY, startCoordinator } from '../helpers.ts'

type Coordinator = Awaited<ReturnType<typeof startCoordinator>>
const edit = (from: string, to: string) => SEED_TRAIN_PY.replace(from, to)

/**
 * One campaign, three contributors: ann's claim is 5σ better than the best, and ben and dee
 * reproduce it. The campaign's `noise.policy` picks the rule: `fixed` wants its 3 verifications,
 * `sequential` stops as soon as the evidence is decisive and the guards (two distinct verifying
 * contributors, the win without any one of them) are met.
 */
async function clearGain(t: Test, policy: 'fixed' | 'sequential' | undefined, stored?: (c: Coordinator) => void) {
  const c = await startCoordinator()
  t.teardown(c.close)
  // `policy: undefined` overrides the helper's `fixed`: the spec's own default applies.
  await c.campaign('demo', { baselineRuns: 2, priorSigma: 0.01, policy })
  stored?.(c)
  const [a, b, d] = await joinWorkers(c, ['ann', 'ben', 'dee'])
  t.teardown(() => [a, b, d].forEach(w => w.close()))
  const [ua, ub, ud] = [await a.next(), await b.next(), await d.next()]
  await a.api.worker.report.mutate({ workerId: a.workerId, report: report(ua, 1.500) })
  await b.api.worker.report.mutate({ workerId: b.workerId, report: report(ub, 1.502) })
  const candidate = await a.next()
  const claim = await a.api.worker.report.mutate({ workerId: a.workerId, report: report(candidate, 1.45, edit('DEPTH = 4', 'DEPTH = 6')) })
  await b.api.worker.report.mutate({ workerId: b.workerId, report: report(await b.next(), 1.53, edit('MATRIX_LR = 0.02', 'MATRIX_LR = 0.01')) })
  await d.api.worker.report.mutate({ workerId: d.workerId, report: report(ud, 1.53, edit('MATRIX_LR = 0.02', 'MATRIX_LR = 0.04')) })
  const [vb, vd] = [await b.next(), await d.next()]
  t.same([vb.kind, vd.kind], ['verify', 'verify'])
  await b.api.worker.report.mutate({ workerId: b.workerId, report: report(vb, 1.452) })
  await d.api.worker.report.mutate({ workerId: d.workerId, report: report(vd, 1.448) })
  return (await a.api.dashboard.experiment.query({ id: claim.experimentId }))!
}

t.test('the fixed policy wants three verifications even of a clear gain', async t => {
  const exp = await clearGain(t, 'fixed')
  t.equal(exp.status, 'pending', exp.decision)
})

t.test('a campaign that asks for the sequential policy merges a clear gain on the two verifications its guards need', async t => {
  const exp = await clearGain(t, 'sequential')
  t.equal(exp.status, 'kept', exp.decision)
  t.match(exp.decision, /log LR/, 'the decision shows the sequential test')
})

t.test('a campaign that names no policy gets parallel: the sequential test, several runs asked for per look', async t => {
  const exp = await clearGain(t, undefined)
  t.equal(exp.status, 'pending', exp.decision)
  t.match(exp.decision, /log LR .*Δ -0\.051000 \(C 1\.450000 over 3/, 'both verifications counted in the test')
  t.match(exp.decision, /[2-9] more run\(s\) needed/, 'the next look asks for more than one run')
})

t.test('a campaign stored without a policy (made before policies existed) keeps the fixed rule', async t => {
  const exp = await clearGain(t, undefined, c => {
    const db = c.app.db.$client
    const spec = JSON.parse((db.prepare("select spec from campaigns where name = 'demo'").get() as { spec: string }).spec)
    t.equal(spec.noise.policy, 'parallel', 'a new campaign stores the default it got')
    delete spec.noise.policy
    db.prepare("update campaigns set spec = ? where name = 'demo'").run(JSON.stringify(spec))
  })
  t.equal(exp.status, 'pending', exp.decision)
  t.notMatch(exp.decision, /log LR/)
})

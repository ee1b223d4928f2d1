import t from 'tap'
import { joinWorkers, report, SEED_TRAIN_PY, startCoordinator } from '../helpers.ts'

// A baseline is handed to whoever asks first, and the parent's mean is what every candidate on it
// is judged against. One baseline of 5e-324 (a denormal) made that mean half the honest one, and
// every candidate on the best was discarded as "not promising"; one of 1e300 made every candidate
// a huge improvement. Bias detection (units/suspects.ts) needs three commits to see a reporter's
// offset: by then the campaign had stalled. A number no model can score is refused at once.

for (const [what, bad] of [['a denormal', 5e-324], ['a tiny', 0.001], ['an absurdly large', 1e300]] as const) {
  t.test(`${what} val_bpb (${bad}) in a baseline is refused as implausible, and candidates are judged against the honest runs`, async t => {
    const c = await startCoordinator()
    t.teardown(c.close)
    await c.campaign('demo', { replications: 1, baselineRuns: 2 })
    const [mallory, ben, carol] = await joinWorkers(c, ['mallory', 'ben', 'carol'])
    t.teardown(() => [mallory, ben, carol].forEach(w => w.close()))
    const mu = await mallory.next()
    t.equal(mu.kind, 'baseline')
    const refused = await mallory.api.worker.report.mutate({ workerId: mallory.workerId, report: report(mu, bad) })
    t.match(refused.decision, /^rejected: val_bpb .* is not a plausible bits-per-byte/, refused.decision)
    const bu = await ben.next()
    t.equal(bu.kind, 'baseline')
    await ben.api.worker.report.mutate({ workerId: ben.workerId, report: report(bu, 1.5) })
    // Carol measures the seed too if a baseline is still wanted when she asks; then she explores.
    let cu = await carol.next()
    while (cu.kind !== 'explore') {
      await carol.api.worker.report.mutate({ workerId: carol.workerId, report: report(cu, 1.5) })
      cu = await carol.next()
    }
    const claim = await carol.api.worker.report.mutate({ workerId: carol.workerId, report: report(cu, 1.45, SEED_TRAIN_PY.replace('DEPTH = 4', 'DEPTH = 5')) })
    t.match(claim.decision, /P 1\.500000 over [12]/, `the parent's mean is the honest run's: ${claim.decision}`)
    t.notMatch(claim.decision, /^discarded/, 'a real improvement is not discarded')
  })
}

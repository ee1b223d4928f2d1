import t from 'tap'
import { joinWorkers, report, SEED_TRAIN_PY, startCoordinator } from '../helpers.ts'

// A verification that crashes counts against its candidate (docs/RATCHET.md): rejected once it failed
// for two other contributors, "or three times in all". Mallory, the only contributor other than
// Ann at work, was drawn for each of Ann's verifications and reported every one a crash at once
// (no training needed): three crashes, and Ann's candidate was rejected as failing elsewhere, as
// was every candidate Mallory was drawn for. Now only two contributors' failures reject; one whose
// verification failed is not handed another of the same candidate, which waits for someone else.

t.test('one contributor\'s crashed verifications never reject a candidate; it verifies that candidate no more', async t => {
  const c = await startCoordinator()
  t.teardown(c.close)
  await c.campaign('demo', { replications: 1, baselineRuns: 1, priorSigma: 0.01 })
  const [ann, mallory] = await joinWorkers(c, ['ann', 'mallory'])
  t.teardown(() => [ann, mallory].forEach(w => w.close()))
  const first = await ann.next()
  await ann.api.worker.report.mutate({ workerId: ann.workerId, report: report(first, 1.5) })
  let held = await mallory.next()
  const claim = await ann.api.worker.report.mutate({ workerId: ann.workerId, report: report(await ann.next(), 1.40, SEED_TRAIN_PY.replace('DEPTH = 4', 'DEPTH = 5')) })
  t.match(claim.decision, /^verify/)
  const status = () => c.app.db.$client.prepare('select status, reason from experiments where id = ?').get(claim.experimentId) as { status: string; reason: string | null }
  let crashed = 0
  for (let i = 0; i < 6 && status().status === 'pending'; i++) {
    if (held.kind !== 'verify') {
      await mallory.api.worker.report.mutate({ workerId: mallory.workerId, report: report(held, 1.6, held.kind === 'explore' ? SEED_TRAIN_PY.replace('MATRIX_LR = 0.02', `MATRIX_LR = 0.0${i + 3}`) : undefined) })
    } else {
      await mallory.api.worker.report.mutate({ workerId: mallory.workerId, report: report(held, null) })
      crashed++
    }
    held = await mallory.next()
  }
  t.comment(`RESULT mallory crashed ${crashed} verification(s); ann's candidate: ${JSON.stringify(status())}`)
  t.equal(crashed, 1, 'after her crash she is handed no more verifications of it')
  t.equal(status().status, 'pending', 'ann\'s candidate is not rejected on one contributor\'s word: it waits')
  const excluded = c.app.db.$client.prepare("select excluded_contributors as x from work_units where kind = 'verify' and target_experiment = ? and state = 'queued'").get(claim.experimentId) as { x: string } | undefined
  const mal = (c.app.db.$client.prepare("select id from contributors where name = 'mallory'").get() as { id: string }).id
  t.ok(excluded && JSON.parse(excluded.x).includes(mal), 'its replacement verification is closed to her')

  const [ben] = await joinWorkers(c, ['ben'])
  t.teardown(ben.close)
  let u = await ben.next()
  while (u.kind !== 'verify') {
    await ben.api.worker.report.mutate({ workerId: ben.workerId, report: report(u, 1.5) })
    u = await ben.next()
  }
  await ben.api.worker.report.mutate({ workerId: ben.workerId, report: report(u, 1.41) })
  t.equal(status().status, 'kept', 'another contributor verifies it, and it merges')
})

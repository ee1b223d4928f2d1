import t from 'tap'
import { CPU, joinWorkers, report, SEED_TRAIN_PY, startCoordinator, wsClient } from '../helpers.ts'

// A token costs a contributor one request to the maintainer; a worker name costs nothing (`hello`
// with a new name registers one more worker of the same contributor). Independence is counted by
// contributor, so the verifier draw (units/verifier-draw.ts) must not be won by whoever registers
// the most names: a contributor with 200 idle workers was drawn for nearly every verification of
// its class, holding each for a reservation window, and picking which rivals' candidates its
// numbers would sink (or, as the author's friend, which forged claims they would confirm).

const FAKE_WORKERS = 200
const CANDIDATES = 24

t.test(`a contributor that registers ${FAKE_WORKERS} workers is drawn to verify no more often than one with a single worker`, async t => {
  const c = await startCoordinator()
  t.teardown(c.close)
  await c.campaign('demo', { replications: 1, baselineRuns: 1 })
  const mallory = wsClient(c.url, c.workerToken('mallory'))
  t.teardown(mallory.close)
  const fakes: string[] = []
  for (let i = 0; i < FAKE_WORKERS; i++)
    fakes.push((await mallory.api.worker.hello.mutate({ name: `sybil-${i}`, hardware: CPU, fingerprints: {}, version: 't' })).workerId)
  const carol = wsClient(c.url, c.workerToken('carol'))
  t.teardown(carol.close)
  const carolId = (await carol.api.worker.hello.mutate({ name: 'carol-gpu0', hardware: CPU, fingerprints: {}, version: 't' })).workerId

  // Ben makes candidates; each asks for one verification, drawn when a worker of the class next leases.
  const [ben] = await joinWorkers(c, ['ben'])
  t.teardown(ben.close)
  await ben.api.worker.report.mutate({ workerId: ben.workerId, report: report(await ben.next(), 1.5) })
  for (let i = 0; i < CANDIDATES; i++) {
    const u = await ben.next()
    t.equal(u.kind, 'explore', 'ben explores (his candidates are not his to verify)')
    await ben.api.worker.report.mutate({ workerId: ben.workerId, report: report(u, 1.45, SEED_TRAIN_PY.replace('MATRIX_LR = 0.02', `MATRIX_LR = 0.${300 + i}`)) })
  }
  await ben.next() // one more lease: the last candidate's verification is drawn too
  const reserved = c.app.db.$client.prepare("select reserved_for as w from work_units where kind = 'verify' and reserved_for is not null").all() as { w: string }[]
  t.equal(reserved.length, CANDIDATES, 'every verification was drawn')
  const toCarol = reserved.filter(r => r.w === carolId).length
  const toMallory = reserved.filter(r => fakes.includes(r.w)).length
  t.comment(`RESULT draws: carol ${toCarol}, mallory's ${FAKE_WORKERS} workers ${toMallory}`)
  // Drawn by contributor, carol's share is a fair coin's: fewer than 5 of 24 happens 1 time in 1,300.
  // Drawn by worker, it was 1 in 201 a draw: 0 or 1 of 24.
  t.ok(toCarol >= 5, `carol, one worker, is drawn for ${toCarol} of ${CANDIDATES} (fair: about half)`)
})

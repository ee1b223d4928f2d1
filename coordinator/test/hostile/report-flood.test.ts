import t from 'tap'
import { randomBytes } from 'node:crypto'
import type { TRPCClientError } from '@trpc/client'
import type { AssignmentEvent, WorkUnit } from '@autoresearch-grid/shared'
import { createCampaign } from '../../src/campaigns/campaigns.ts'
import { CPU, joinWorkers, metrics, report, SEED_TRAIN_PY, startCoordinator, wsClient } from '../helpers.ts'

// Every report of a changed candidate stores its files as a commit and its diff in a row, for good,
// and nothing bounded how often a contributor could send one: a worker may report a unit the
// moment it gets it (a crash needs no training). A probe of this session: one token's eight workers,
// each reporting every unit at once as a crash with 120 KB of random text, stored 1,875 commits
// in 10 s and grew the data dir by 60 MB. Now a contributor's reports that store code are bounded,
// per campaign, by what its units could train in the shortest run the ratchet accepts
// (units/report-pace.ts); the rest are refused as `rate-limited`, which a worker sends again later.

t.test('a contributor\'s reports that store new code are bounded by what its units could train; the rest wait', async t => {
  // Four units at once, so eight such reports per window; a budget of an hour makes the window
  // (45 minutes) far longer than the test, however slow the machine.
  const c = await startCoordinator({ maxOpenUnitsPerContributor: 4 })
  t.teardown(c.close)
  await createCampaign(c.app, { name: 'demo', seed: { 'train.py': SEED_TRAIN_PY }, spec: { budgetSeconds: 3600, profile: 'cpu-tiny', noise: { policy: 'fixed', replications: 1, baselineRuns: 1 } } })
  const [ben] = await joinWorkers(c, ['ben'])
  t.teardown(ben.close)
  const bens = await ben.next()

  const { api, close } = wsClient(c.url, c.workerToken('mallory'))
  t.teardown(close)
  const { workerId } = await api.worker.hello.mutate({ name: 'm0', hardware: CPU, fingerprints: {}, version: 't' })
  const units: WorkUnit[] = []
  const sub = api.worker.assignments.subscribe({ workerId, capacity: 4 }, { onData: (e: AssignmentEvent) => { if (e.type === 'unit') units.push(e.unit) } })
  t.teardown(() => sub.unsubscribe())
  const next = async () => { while (!units.length) await new Promise(r => setTimeout(r, 10)); return units.shift()! }

  let stored = 0
  const refused: TRPCClientError<never>[] = []
  const held: WorkUnit[] = []
  for (let i = 0; i < 20 && refused.length < 4; i++) {
    const u = await next()
    const junk = `X = 1\n${randomBytes(30_000).toString('base64')}\n`
    await api.worker.report.mutate({ workerId, report: report(u, null, junk) })
      .then(() => stored++, (e: TRPCClientError<never>) => { refused.push(e); held.push(u) })
  }
  t.comment(`RESULT mallory's instant crash reports stored: ${stored}, refused: ${refused.length}`)
  t.equal(stored, 8, 'twice the units she may hold are stored')
  t.match(refused[0].message, /reported 8 runs to "demo" in the last 2700 s.*send it again in \d+ s/, 'the rest are refused, saying when to send them again')
  t.equal((refused[0].data as unknown as { code?: string }).code, 'TOO_MANY_REQUESTS', 'as a refusal a worker retries, not a final one')
  const commits = c.app.db.$client.prepare("select count(*) as n from experiments e join contributors k on k.id = e.contributor_id where k.name = 'mallory'").get() as { n: number }
  t.equal(commits.n, 8, 'nothing of the refused reports was stored')
  const state = c.app.db.$client.prepare('select state from work_units where id = ?').get(held[0].id) as { state: string }
  t.equal(state.state, 'leased', 'a refused report leaves its unit leased, for the same report later')

  let mine = bens
  while (mine.kind !== 'explore') {
    await ben.api.worker.report.mutate({ workerId: ben.workerId, report: { ...report(mine, 1.5), metrics: metrics(1.5, 3600) } })
    mine = await ben.next()
  }
  const honest = await ben.api.worker.report.mutate({ workerId: ben.workerId, report: report(mine, null, SEED_TRAIN_PY.replace('DEPTH = 4', 'DEPTH = 5')) })
  t.ok(honest.experimentId, 'another contributor\'s reports are not held back by hers')
})

import t from 'tap'
import type { AssignmentEvent, WorkUnit } from '@autoresearch-grid/shared'
import { CPU, joinWorkers, report, SEED_TRAIN_PY, startCoordinator, wsClient } from '../helpers.ts'
import { drive, type Driven } from './drive.ts'

// Baselines of a new best go to whoever asks first, and their mean is what every candidate on that
// best is judged against. A contributor with idle workers (names cost nothing) asked first for all
// of them: reporting each 4σ high, the first honest null edit on the new best merged, a non-
// improvement, within seventeen units (default policy; a probe of this session). Independence is
// by contributor, so the best's baselines on a class are shared out by contributor: one may take
// another only while it has no more of them than each other contributor at work on the campaign
// and class (holding a unit of it).

type Coordinator = Awaited<ReturnType<typeof startCoordinator>>

async function worker(c: Coordinator, token: string, name: string): Promise<Driven & { units: WorkUnit[]; close(): void }> {
  const { api, close } = wsClient(c.url, token)
  const { workerId } = await api.worker.hello.mutate({ name, hardware: CPU, fingerprints: {}, version: 't' })
  const units: WorkUnit[] = []
  const sub = api.worker.assignments.subscribe({ workerId }, { onData: (e: AssignmentEvent) => { if (e.type === 'unit') units.push(e.unit) } })
  const next = async () => { while (!units.length) await new Promise(r => setTimeout(r, 20)); return units.shift()! }
  return { name, api: api as never, workerId, units, next, close: () => { sub.unsubscribe(); close() } }
}

t.test('a contributor with idle workers takes no more of a new best\'s baselines than each contributor at work', async t => {
  const c = await startCoordinator()
  t.teardown(c.close)
  await c.campaign('demo', { replications: 1, baselineRuns: 4 })
  const honest = await joinWorkers(c, ['ben', 'carol', 'dee'])
  t.teardown(() => honest.forEach(w => w.close()))
  const merges = () => (c.app.db.$client.prepare('select count(*) as n from merges').get() as { n: number }).n
  // The honest three measure the seed, then ben's real improvement merges after a verification.
  const better = SEED_TRAIN_PY.replace('DEPTH = 4', 'DEPTH = 5')
  let edits = 0
  await drive(honest, (w, u) => {
    if (u.kind === 'explore' && w.name === 'ben') return report(u, 1.4, better)
    if (u.kind === 'explore') return report(u, 1.5, SEED_TRAIN_PY.replace('MATRIX_LR = 0.02', `MATRIX_LR = 0.${500 + ++edits}`))
    return report(u, u.source['train.py'] === better ? 1.4 : 1.5)
  }, () => merges() > 0)
  const best = (c.app.db.$client.prepare("select best_commit as b from campaigns where name = 'demo'").get() as { b: string }).b
  await new Promise(r => setTimeout(r, 300)) // the honest feeds lease their next units (they hold them)

  // Mallory's four idle workers join now and ask for work at once.
  const token = c.workerToken('mallory')
  const mallory = await Promise.all([0, 1, 2, 3].map(i => worker(c, token, `m${i}`)))
  t.teardown(() => mallory.forEach(w => w.close()))
  await new Promise(r => setTimeout(r, 1500))
  const theirs = mallory.flatMap(w => w.units).filter(u => u.kind === 'baseline' && u.parentCommit === best).length
  const all = (c.app.db.$client.prepare("select count(*) as n from work_units where kind = 'baseline' and parent_commit = ?").get(best) as { n: number }).n
  t.comment(`RESULT baselines of the new best: mallory ${theirs} of ${all}`)
  t.ok(theirs <= 1, `mallory holds ${theirs} of the new best's baselines, not all of them`)
  t.ok(mallory.some(w => w.units.some(u => u.kind === 'explore')), 'her other workers explore instead')
})

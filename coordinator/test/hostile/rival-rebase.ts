import type { Test } from 'tap'
import type { AssignmentEvent, WorkUnit } from '@autoresearch-grid/shared'
import { CPU, joinWorkers, report, SEED_TRAIN_PY, startCoordinator, wsClient } from '../helpers.ts'

// The set-up of the rival-rebase tests (rebase-veto.test.ts, rebase-content.test.ts): a rival's
// promising change waits for a rebase, and Mallory, idle, is at hand to take it.

export const edit = (from: string, to: string) => SEED_TRAIN_PY.replace(from, to)

type Coordinator = Awaited<ReturnType<typeof startCoordinator>>

export async function mallory(c: Coordinator, t: Test) {
  const { api, close } = wsClient(c.url, c.workerToken('mallory'))
  t.teardown(close)
  const { workerId } = await api.worker.hello.mutate({ name: 'm0', hardware: CPU, fingerprints: {}, version: 't' })
  const units: WorkUnit[] = []
  const sub = api.worker.assignments.subscribe({ workerId }, { onData: (e: AssignmentEvent) => { if (e.type === 'unit') units.push(e.unit) } })
  t.teardown(() => sub.unsubscribe())
  const next = async () => { while (!units.length) await new Promise(r => setTimeout(r, 20)); return units.shift()! }
  return { api, workerId, next }
}

/** Ann's change merges; Ben's, promising on the seed, conflicts with it and waits for a rebase. */
export async function rivalRebaseQueued(t: Test) {
  const c = await startCoordinator()
  t.teardown(c.close)
  await c.campaign('demo', { replications: 0, baselineRuns: 1, priorSigma: 0.01 })
  const [ann, ben, cat] = await joinWorkers(c, ['ann', 'ben', 'cat'])
  t.teardown(() => [ann, ben, cat].forEach(w => w.close()))
  await ann.api.worker.report.mutate({ workerId: ann.workerId, report: report(await ann.next(), 1.50) })
  const [ua, ub] = [await ann.next(), await ben.next()]
  const catHolds = await cat.next() // cat holds an exploration of the seed: she is at work on the class
  await ann.api.worker.report.mutate({ workerId: ann.workerId, report: report(ua, 1.45, edit('DEPTH = 4', 'DEPTH = 6')) })
  const baseline = await ann.next()
  t.equal(baseline.kind, 'baseline', 'ann measures the new best')
  await ann.api.worker.report.mutate({ workerId: ann.workerId, report: report(baseline, 1.45) })
  await ann.next() // and holds an exploration of it
  ben.stopFeed() // ben takes no more work: the rebase of his idea waits for whoever asks
  const stale = await ben.api.worker.report.mutate({ workerId: ben.workerId, report: report(ub, 1.44, edit('DEPTH = 4', 'DEPTH = 8')) })
  t.match(stale.decision, /^stale/, 'ben\'s change was promising on the seed, whose best moved on')
  const rebases = () => c.app.db.$client.prepare("select id, state from work_units where kind = 'rebase' and target_experiment = ? order by created_at").all(stale.experimentId) as { id: string; state: string }[]
  t.equal(rebases().length, 1, 'it conflicts with the new best: a rebase unit is queued')
  return { c, cat, catHolds, origin: stale.experimentId, rebases }
}

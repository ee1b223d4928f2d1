import t from 'tap'
import { sourceHash, type AssignmentEvent, type WorkUnit } from '@autoresearch-grid/shared'
import { CPU, report, SEED_TRAIN_PY, startCoordinator, wsClient } from '../helpers.ts'
import { until } from '../../../shared/test/support/until.ts'

// A unit's source is sent only when the worker lacks it (shared/src/protocol.ts, HeldSources):
// the worker names the sources it holds when it subscribes, and the feed remembers what it sent.
const SEED = { 'train.py': SEED_TRAIN_PY }

async function worker(c: Awaited<ReturnType<typeof startCoordinator>>, name: string, sources?: string[]) {
  const { api, close } = wsClient(c.url, c.workerToken(name))
  const { workerId } = await api.worker.hello.mutate({ name, hardware: CPU, fingerprints: {}, version: 't' })
  const units: WorkUnit[] = []
  const sub = api.worker.assignments.subscribe({ workerId, capacity: 1, ...(sources ? { sources } : {}) }, {
    onData: (e: AssignmentEvent) => { if (e.type === 'unit') units.push(e.unit) },
  })
  const next = async (n: number) => {
    await until(`unit ${n}`, () => units.length >= n, { everyMs: 20 })
    return units[n - 1]
  }
  return { api, workerId, units, next, close: () => { sub.unsubscribe(); close() } }
}

t.test('a worker that names no sources (an older worker) gets every unit with its source, and its hash', async t => {
  const c = await startCoordinator()
  t.teardown(c.close)
  await c.campaign()
  const w = await worker(c, 'old')
  t.teardown(w.close)
  const first = await w.next(1)
  t.same(first.source, SEED, 'the first unit carries the source')
  t.equal(first.sourceHash, sourceHash(SEED))
  await w.api.worker.report.mutate({ workerId: w.workerId, report: report(first, 2.5) })
  const second = await w.next(2)
  t.equal(second.parentCommit, first.parentCommit, 'the next unit starts from the same commit')
  t.same(second.source, SEED, 'and still carries the source')
})

t.test('a source the worker named, or was sent on the feed before, comes as its hash only', async t => {
  const c = await startCoordinator()
  t.teardown(c.close)
  await c.campaign()
  const held = await worker(c, 'holder', [sourceHash(SEED)])
  const first = await held.next(1)
  t.same(first.source, {}, 'named at subscription: no source')
  t.equal(first.sourceHash, sourceHash(SEED), 'the hash says which')
  t.same(await held.api.worker.unitSource.query({ workerId: held.workerId, unitId: first.id }), SEED, 'a worker that lost it asks for it')
  held.close()

  const fresh = await worker(c, 'fresh', [])
  t.teardown(fresh.close)
  const a = await fresh.next(1)
  t.same(a.source, SEED, 'a worker that holds nothing yet gets the source')
  await fresh.api.worker.report.mutate({ workerId: fresh.workerId, report: report(a, 2.5) })
  const b = await fresh.next(2)
  t.equal(b.parentCommit, a.parentCommit)
  t.same(b.source, {}, 'the same source again on the same feed: hash only')
  t.equal(b.sourceHash, a.sourceHash)
})

t.test('a unit source is given only to the worker the unit is leased to', async t => {
  const c = await startCoordinator()
  t.teardown(c.close)
  await c.campaign()
  const owner = await worker(c, 'owner', [])
  t.teardown(owner.close)
  const unit = await owner.next(1)
  const other = await worker(c, 'other', [])
  t.teardown(other.close)
  await t.rejects(other.api.worker.unitSource.query({ workerId: other.workerId, unitId: unit.id }), /not leased to this worker/)
  await t.rejects(other.api.worker.unitSource.query({ workerId: other.workerId, unitId: 'u_nothing' }), /not leased to this worker/)
})

import t from 'tap'
import { LIMITS, sourceHash, type AssignmentEvent, type WorkUnit } from '@autoresearch-grid/shared'
import { CPU, report, SEED_TRAIN_PY, startCoordinator, wsClient } from '../../../coordinator/test/helpers.ts'
import { SourceCache } from '../../src/client/sources.ts'
import { until } from '../../../shared/test/support/until.ts'

// The worker's half of "a unit's source only when the worker lacks it" (shared/src/protocol.ts,
// HeldSources): it names what it holds, fills in what the coordinator left out, asks for what it lost.
const SEED = { 'train.py': SEED_TRAIN_PY }

t.test('against a real coordinator: units come without a source the cache holds, and the cache fills them in or asks', async t => {
  const c = await startCoordinator()
  t.teardown(c.close)
  await c.campaign()
  const { api, close } = wsClient(c.url, c.workerToken('w'))
  t.teardown(close)
  const { workerId } = await api.worker.hello.mutate({ name: 'w', hardware: CPU, fingerprints: {}, version: 't' })
  const cache = new SourceCache()
  let asked = 0
  const fetch = (u: WorkUnit) => { asked++; return api.worker.unitSource.query({ workerId, unitId: u.id }) }
  const raw: WorkUnit[] = []
  const sub = api.worker.assignments.subscribe({ workerId, capacity: 1, sources: cache.held() }, { onData: (e: AssignmentEvent) => { if (e.type === 'unit') raw.push(e.unit) } })
  t.teardown(() => sub.unsubscribe())
  const next = async (n: number) => {
    await until(`unit ${n}`, () => raw.length >= n, { everyMs: 20 })
    return raw[n - 1]
  }

  const first = await cache.complete(await next(1), fetch)
  t.same(first.source, SEED, 'the first unit came whole')
  t.same(cache.held(), [sourceHash(SEED)], 'and the cache names its source from now on')
  await api.worker.report.mutate({ workerId, report: report(first, 2.5) })
  const second = await next(2)
  t.same(second.source, {}, 'the coordinator left the same source out of the next unit')
  t.same((await cache.complete(second, fetch)).source, SEED, 'the cache filled it in')
  t.equal(asked, 0, 'without asking')

  const restarted = new SourceCache()
  t.same((await restarted.complete(second, fetch)).source, SEED, 'a worker that lost it asks the coordinator')
  t.equal(asked, 1)
})

const unit = (source: Record<string, string>, hash?: string): WorkUnit => ({
  id: 'u1', kind: 'explore', campaign: 'demo', profile: 'cpu-tiny', budgetSeconds: 10, leaseToken: 'l', leaseExpiresAt: 0, parentCommit: 'p',
  source, editableFiles: ['train.py'], hypothesis: null, referenceDiff: null, triedOnParent: [], ...(hash ? { sourceHash: hash } : {}),
})

t.test('a unit of an older coordinator (no hash) is taken as it came', async t => {
  const cache = new SourceCache()
  const u = unit(SEED)
  t.equal(await cache.complete(u, async () => { throw new Error('not asked') }), u)
  t.same(cache.held(), [], 'and nothing is named for it')
})

t.test('a source that does not match the hash the unit names is refused', async t => {
  const cache = new SourceCache()
  await t.rejects(cache.complete(unit({}, sourceHash(SEED)), async () => ({ 'train.py': 'import os\n' })), /does not match its hash/)
  t.same(cache.held(), [], 'and not kept')
})

t.test('the cache keeps the latest sources used, and names at most the protocol limit', async t => {
  const cache = new SourceCache()
  const sources = Array.from({ length: 3 * LIMITS.heldSources }, (_, i) => ({ 'train.py': `LR = ${i}\n` }))
  for (const s of sources) await cache.complete(unit(s, sourceHash(s)), async () => { throw new Error('not asked') })
  const named = cache.held()
  t.equal(named.length, LIMITS.heldSources)
  t.same(named, sources.slice(-LIMITS.heldSources).map(sourceHash), 'the latest ones')
  const older = sources[sources.length - 2 * LIMITS.heldSources]
  t.same((await cache.complete(unit({}, sourceHash(older)), async () => { throw new Error('not asked') })).source, older, 'twice as many are kept')
  t.same(cache.held().at(-1), sourceHash(older), 'a source used again is the latest')
})

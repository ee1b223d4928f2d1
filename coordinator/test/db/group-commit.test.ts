import t from 'tap'
import { groupCommit, MAX_SYNCS } from '../../src/db/open.ts'

// Durable before acknowledged, through shared syncs of the WAL (db/open.ts, groupCommit). A fake
// sync that ends when the test says so: which syncs began, and which caller each one released.
function fakeWal() {
  const syncs: { end: () => void; fail: (e: Error) => void }[] = []
  const wal = { sync: () => new Promise<void>((resolve, reject) => { syncs.push({ end: resolve, fail: reject }) }), close: () => {} }
  return { wal, syncs }
}
const settled = (p: Promise<unknown>) => Promise.race([p.then(() => 'done', () => 'failed'), new Promise(r => setImmediate(() => r('waiting')))])

t.test('a caller that comes while a sync runs starts its own at once, without waiting for the running one to end', async t => {
  const { wal, syncs } = fakeWal()
  const { durable } = groupCommit(wal)
  const first = durable()
  const second = durable()
  t.equal(syncs.length, 2, 'the second sync began while the first still ran')
  syncs[1].end()
  t.equal(await settled(second), 'done', 'the second caller is released by its own sync')
  t.equal(await settled(first), 'waiting', 'the first is not: its own sync has not ended')
  syncs[0].end()
  t.equal(await settled(first), 'done')
})

t.test('callers that come while every slot is busy share one sync, which begins once a slot frees', async t => {
  const { wal, syncs } = fakeWal()
  const { durable } = groupCommit(wal)
  const busy = Array.from({ length: MAX_SYNCS }, () => durable())
  const later = [durable(), durable(), durable()]
  t.equal(syncs.length, MAX_SYNCS, 'no more than MAX_SYNCS run at once')
  // A sync that began before they called does not release them.
  syncs[0].end()
  await settled(busy[0])
  t.same(await Promise.all(later.map(settled)), ['waiting', 'waiting', 'waiting'], 'a sync that began before they called releases none of them')
  t.equal(syncs.length, MAX_SYNCS + 1, 'one sync began for all three, in the slot freed')
  syncs[MAX_SYNCS].end()
  t.same(await Promise.all(later.map(settled)), ['done', 'done', 'done'])
  for (const s of syncs) s.end()
  await Promise.all(busy)
})

t.test('a failed sync fails exactly the callers it was to release', async t => {
  const { wal, syncs } = fakeWal()
  const { durable } = groupCommit(wal)
  const a = durable()
  const b = durable()
  syncs[0].fail(new Error('EIO'))
  t.equal(await settled(a), 'failed')
  t.equal(await settled(b), 'waiting')
  syncs[1].end()
  t.equal(await settled(b), 'done')
  t.equal(await settled(durable()), 'waiting', 'a later caller gets a new sync')
  syncs[2].end()
})

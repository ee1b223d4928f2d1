import t from 'tap'
import Database from 'better-sqlite3'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openDb } from '../../src/db/open.ts'
import { TickBatch } from '../../src/db/tick-batch.ts'

// Writes of one turn of the event loop share one transaction; each stays its own savepoint.
async function database(t: { teardown(fn: () => unknown): void }) {
  const dir = await mkdtemp(join(tmpdir(), 'arg-batch-'))
  const file = join(dir, 'db.sqlite')
  const db = openDb(file)
  db.$client.exec('create table t (x integer)')
  const other = new Database(file, { readonly: true })
  t.teardown(async () => { other.close(); db.$client.close(); await rm(dir, { recursive: true, force: true }) })
  const insert = db.$client.prepare('insert into t values (?)')
  const seenElsewhere = () => (other.prepare('select count(*) as n from t').get() as { n: number }).n
  return { db, insert, seenElsewhere }
}

t.test('writes added in the same turn commit together: none is visible to another connection before the last ran', async t => {
  const { db, insert, seenElsewhere } = await database(t)
  const batch = new TickBatch(db)
  const seen: number[] = []
  const done = Promise.all([1, 2, 3].map(x => batch.add(() => { seen.push(seenElsewhere()); insert.run(x); return x * 10 })))
  t.same(await done, [10, 20, 30], 'each caller gets its own result')
  t.same(seen, [0, 0, 0], 'inside the batch, the others\' writes were not committed yet')
  t.equal(seenElsewhere(), 3, 'and all were committed at the end')
})

t.test('a write that throws is rolled back alone and its caller gets the error', async t => {
  const { db, insert, seenElsewhere } = await database(t)
  const batch = new TickBatch(db)
  const a = batch.add(() => insert.run(1))
  const b = batch.add(() => { insert.run(2); throw new Error('refused') })
  const c = batch.add(() => insert.run(3))
  await t.resolves(a)
  await t.rejects(b, /refused/)
  await t.resolves(c)
  t.same(db.$client.prepare('select x from t order by x').all(), [{ x: 1 }, { x: 3 }], 'the failed write left nothing')
  t.equal(seenElsewhere(), 2)
})

t.test('writes that open transactions of their own nest inside the batch, and later turns get batches of their own', async t => {
  const { db, insert } = await database(t)
  const batch = new TickBatch(db)
  await batch.add(() => db.transaction(() => { insert.run(1) }))
  await batch.add(() => db.transaction(() => { insert.run(2) }))
  t.same(db.$client.prepare('select x from t order by x').all(), [{ x: 1 }, { x: 2 }])
  t.equal(db.$client.inTransaction, false, 'nothing left open')
})

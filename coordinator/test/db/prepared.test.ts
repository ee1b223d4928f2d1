import t from 'tap'
import { asc, eq, sql } from 'drizzle-orm'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openDb } from '../../src/db/open.ts'
import { events } from '../../src/db/schema.ts'
import { limitInText, prepared } from '../../src/db/prepared.ts'

// A prepared query's LIMIT is written into its SQL text (db/prepared.ts, `limitInText`): bound, it
// made SQLite plan the query again on every run. The rows are the ones a bound limit gives.

t.test('a limit written into the text gives the rows a bound limit gives, run after run', async t => {
  const dir = await mkdtemp(join(tmpdir(), 'arg-prepared-'))
  const db = openDb(join(dir, 'coordinator.db'))
  t.teardown(async () => { db.$client.close(); await rm(dir, { recursive: true, force: true }) })
  for (let i = 0; i < 10; i++) db.insert(events).values({ campaign: i % 2 ? 'a' : 'b', type: 'x', payload: { i } }).run()
  const q = prepared(d => ({
    inText: d.select().from(events).where(eq(events.campaign, sql.placeholder('c'))).orderBy(asc(events.id)).limit(limitInText(3)).prepare(),
    bound: d.select().from(events).where(eq(events.campaign, sql.placeholder('c'))).orderBy(asc(events.id)).limit(3).prepare(),
  }))
  t.match((q(db).inText as unknown as { query: { sql: string } }).query.sql, / limit 3$/, 'the limit is in the SQL text')
  for (const c of ['a', 'b', 'a', 'none']) t.same(q(db).inText.all({ c }), q(db).bound.all({ c }), `campaign ${c}`)
  t.equal(q(db).inText.all({ c: 'a' }).length, 3)
})

t.test('only a whole, non-negative number of rows can be written into the text', async t => {
  for (const bad of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) t.throws(() => limitInText(bad), /not a row limit/, String(bad))
  t.doesNotThrow(() => limitInText(0))
})

import Database from 'better-sqlite3'
import { drizzle } from 'drizzle-orm/better-sqlite3'
import { sqliteTable, text, integer } from 'drizzle-orm/sqlite-core'
import { and, eq } from 'drizzle-orm'
const t = sqliteTable('t', { id: text('id').primaryKey(), campaign: text('campaign'), kind: text('kind'), state: text('state'), parent: text('parent'), n: integer('n') })
const sqlite = new Database(':memory:'); sqlite.exec('create table t (id text primary key, campaign text, kind text, state text, parent text, n integer)')
const db = drizzle(sqlite)
for (let r = 0; r < 3; r++) {
  let t1 = performance.now(); for (let i = 0; i < 5000; i++) db.select().from(t).where(and(eq(t.campaign, 'b'), eq(t.kind, 'baseline'), eq(t.state, 'leased'), eq(t.parent, 'x'))).toSQL(); console.log('toSQL ms', ((performance.now() - t1) / 5000).toFixed(4))
}

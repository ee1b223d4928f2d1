import { openDb } from '/work/main/coordinator/src/db/open.ts'
import { and, eq, inArray } from 'drizzle-orm'
import { workUnits, measurements, hypotheses } from '/work/main/coordinator/src/db/schema.ts'
import { readdirSync } from 'node:fs'
const d = readdirSync('/tmp').filter(f => f.startsWith('ing-')).sort().pop()
const db = openDb(`/tmp/${d}/coordinator.db`)
const qs = {
  queued: db.select().from(workUnits).where(and(eq(workUnits.state, 'queued'), eq(workUnits.campaign, 'b'))),
  running: db.select().from(workUnits).where(and(eq(workUnits.campaign, 'b'), eq(workUnits.kind, 'baseline'), eq(workUnits.state, 'leased'), eq(workUnits.parentCommit, 'x'))),
  hs: db.select().from(hypotheses).where(and(eq(hypotheses.campaign, 'b'), inArray(hypotheses.status, ['open', 'in-progress']))),
  measured: db.select().from(measurements).where(and(eq(measurements.campaign, 'b'), inArray(measurements.commit, ['x']))),
}
for (const [k, q] of Object.entries(qs)) {
  const { sql, params } = q.toSQL()
  console.log(k, db.$client.prepare('explain query plan ' + sql).all(...params).map((r: any) => r.detail).join(' | '))
  const t0 = performance.now(); for (let i = 0; i < 200; i++) q.all(); console.log('   ', ((performance.now() - t0) / 200).toFixed(3), 'ms')
}
console.log(db.$client.prepare('select count(*) n from work_units').get(), db.$client.prepare('select count(*) n from events').get())
console.log(db.$client.prepare('select state, kind, count(*) n from work_units group by 1,2').all())
const st = db.$client.prepare("select * from work_units where state='leased' and campaign='b' and kind='baseline'")
let t1 = performance.now(); for (let i = 0; i < 200; i++) st.all(); console.log('raw', ((performance.now() - t1) / 200).toFixed(3))
const q = db.select().from(workUnits).where(and(eq(workUnits.campaign, 'b'), eq(workUnits.kind, 'baseline'), eq(workUnits.state, 'leased'), eq(workUnits.parentCommit, 'x')))
t1 = performance.now(); for (let i = 0; i < 2000; i++) q.toSQL(); console.log('toSQL', ((performance.now() - t1) / 2000).toFixed(3))
t1 = performance.now(); for (let i = 0; i < 2000; i++) db.select().from(workUnits).where(and(eq(workUnits.campaign, 'b'), eq(workUnits.kind, 'baseline'), eq(workUnits.state, 'leased'), eq(workUnits.parentCommit, 'x'))).all(); console.log('build+run', ((performance.now() - t1) / 2000).toFixed(3))

import t from 'tap'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openDb } from '../../src/db/open.ts'
import { sameOnParentQuery } from '../../src/units/report.ts'
import { knownRunQuery } from '../../src/units/reuse.ts'
import { measuredOnParentQuery } from '../../src/swarm/claim.ts'
import { queuedWindowQuery } from '../../src/units/assign.ts'
import { clearingsQuery } from '../../src/units/suspects.ts'

// Counts taken on every decision must not read the rows they count: the campaign's decided
// candidates by status (units/sequential-inputs.ts realRateOfCampaign) are kept by triggers in
// `decided_counts` (test/db/decided-counts.test.ts); before, counting them visited every experiment
// of the campaign (docs/PERFORMANCE.md, "Tenth pass" and "Fifteenth pass").
t.test('the decided candidates are read from their counts by the table\'s key, on the migrated schema', async t => {
  const dir = await mkdtemp(join(tmpdir(), 'arg-indexes-'))
  const db = openDb(join(dir, 'coordinator.db'))
  t.teardown(async () => { db.$client.close(); await rm(dir, { recursive: true, force: true }) })
  const plan = db.$client.prepare('explain query plan select status, n from decided_counts where campaign = ?').all('demo') as { detail: string }[]
  t.match(plan.map(p => p.detail).join('\n'), /USING INDEX decided_counts_key \(campaign=\?\)/, JSON.stringify(plan))
})

// Every lease and report asks whether the maintainer cleared anyone since: through the index of
// clearings, never a read of every contributor (docs/PERFORMANCE.md, "Eighteenth pass").
t.test("the maintainer's clearings are read from their index, not from every contributor", async t => {
  const dir = await mkdtemp(join(tmpdir(), 'arg-indexes-'))
  const db = openDb(join(dir, 'coordinator.db'))
  t.teardown(async () => { db.$client.close(); await rm(dir, { recursive: true, force: true }) })
  const { sql } = clearingsQuery(db).toSQL()
  const detail = (db.$client.prepare(`explain query plan ${sql}`).all() as { detail: string }[]).map(p => p.detail).join('\n')
  t.match(detail, /USING COVERING INDEX contributors_cleared \(suspect_cleared_at>\?\)/, detail)
  t.notMatch(detail, /SCAN contributors/, detail)
})

// Lookups of one source's rows must go through `experiments_source`: the planner preferred the
// campaign's or the parent's index, which visit every experiment of the campaign or of the parent
// (docs/PERFORMANCE.md, "Twelfth pass").
const bySource: [string, (db: ReturnType<typeof openDb>) => { toSQL: () => { sql: string; params: unknown[] } }, RegExp][] = [
  ["a report's copy check (units/report.ts)", sameOnParentQuery, /USING INDEX experiments_source \(source_hash=\?\)/],
  ["a claim's check for the same code measured on the parent (swarm/claim.ts)", measuredOnParentQuery, /USING INDEX experiments_source \(source_hash=\?\)/],
  ['worker.known, the earlier run of a source on a class (units/reuse.ts)', knownRunQuery, /USING INDEX experiments_source \(source_hash=\? AND hardware_class=\?\)/],
]
for (const [what, query, index] of bySource) {
  t.test(`${what} reads the rows of its source, not every experiment of the campaign or the parent`, async t => {
    const dir = await mkdtemp(join(tmpdir(), 'arg-indexes-'))
    const db = openDb(join(dir, 'coordinator.db'))
    t.teardown(async () => { db.$client.close(); await rm(dir, { recursive: true, force: true }) })
    const { sql, params } = query(db).toSQL()
    const detail = (db.$client.prepare(`explain query plan ${sql}`).all(...params.map(() => 'x')) as { detail: string }[]).map(p => p.detail).join('\n')
    t.match(detail, index, detail)
    t.notMatch(detail, /experiments_parent|experiments_campaign/, detail)
  })
}

t.test("a campaign's merges newest first, and an experiment's merge, read through the merges' indexes", async t => {
  const dir = await mkdtemp(join(tmpdir(), 'arg-indexes-'))
  const db = openDb(join(dir, 'coordinator.db'))
  t.teardown(async () => { db.$client.close(); await rm(dir, { recursive: true, force: true }) })
  const plan = (sql: string) => (db.$client.prepare(`explain query plan ${sql}`).all('x') as { detail: string }[]).map(p => p.detail).join('\n')
  const history = plan(`select best_after from merges where campaign = ? order by created_at desc limit 10`)
  t.match(history, /USING INDEX merges_campaign \(campaign=\?\)/, history)
  t.notMatch(history, /TEMP B-TREE/, history)
  t.match(plan(`select best_after from merges where experiment_id = ?`), /USING INDEX merges_experiment \(experiment_id=\?\)/)
})

// A lease reads the oldest queued units of each kind, 64 at most (units/assign.ts QUEUE_WINDOW). On an
// index of (campaign, kind, state) alone SQLite read every queued unit of the kind and sorted them:
// 1,400 verifications queued at 10,000 workers made that read most of a lease (docs/PERFORMANCE.md,
// "Sixteenth pass"). In the index's order it stops at the window.
t.test("a lease's window of the queue is read in the queue index's order, not sorted from the whole queue", async t => {
  const dir = await mkdtemp(join(tmpdir(), 'arg-indexes-'))
  const db = openDb(join(dir, 'coordinator.db'))
  t.teardown(async () => { db.$client.close(); await rm(dir, { recursive: true, force: true }) })
  const { sql, params } = queuedWindowQuery(db).toSQL()
  const detail = (db.$client.prepare(`explain query plan ${sql}`).all(...params.map(() => 'x')) as { detail: string }[]).map(p => p.detail).join('\n')
  t.match(detail, /USING INDEX work_units_queue \(campaign=\? AND kind=\? AND state=\?\)/, detail)
  t.notMatch(detail, /TEMP B-TREE/, detail)
})

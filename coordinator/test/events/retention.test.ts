import t from 'tap'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openDb } from '../../src/db/open.ts'
import { events } from '../../src/db/schema.ts'
import { DEFAULT_EVENT_RETENTION_MS, PRUNE_BATCH, pruneEvents } from '../../src/events/retention.ts'
import { spawnSync } from 'node:child_process'
import { openCoordinator } from '../../src/coordinator.ts'
import { CoordinatorProcess, readDb } from '../faults/coordinator-process.ts'
import { coordinatorCli as CLI } from '../../../shared/test/support/cli.ts'

const DAY = 24 * 60 * 60 * 1000
const NOW = Date.UTC(2026, 11, 5)

async function log(t: { teardown: (f: () => Promise<void>) => void }) {
  const dir = await mkdtemp(join(tmpdir(), 'arg-retention-'))
  const db = openDb(join(dir, 'coordinator.db'))
  t.teardown(async () => { db.$client.close(); await rm(dir, { recursive: true, force: true }) })
  const state = { retentionMs: undefined as number | undefined, pruned: { id: 0 } }
  const prune = (batches?: number) => pruneEvents(db, { now: NOW, retentionMs: state.retentionMs, pruned: state.pruned }, batches)
  const add = (type: string, ageMs: number, n = 1) =>
    db.insert(events).values(Array.from({ length: n }, () => ({ campaign: 'demo', type, payload: {}, createdAt: NOW - ageMs }))).run()
  const types = () => db.select({ type: events.type }).from(events).all().map(r => r.type)
  return { state, prune, add, types }
}

t.test('traffic older than the retention goes; decisions, merges and young traffic stay', async t => {
  const { prune, add, types } = await log(t)
  add('worker-hello', 8 * DAY)
  add('unit-leased', 8 * DAY)
  add('decision', 8 * DAY)
  add('merge-reverted', 8 * DAY)
  add('lease-expired', 8 * DAY)
  add('unit-leased', 6 * DAY)
  add('worker-hello', 1000)
  t.equal(prune(), 3)
  t.same(types(), ['decision', 'merge-reverted', 'unit-leased', 'worker-hello'])
  t.equal(prune(), 0, 'nothing more is old enough')
  t.equal(DEFAULT_EVENT_RETENTION_MS, 7 * DAY)
})

t.test('the retention is a setting', async t => {
  const { state, prune, add, types } = await log(t)
  add('worker-hello', 2 * DAY)
  add('worker-hello', 1000)
  state.retentionMs = DAY
  t.equal(prune(), 1)
  t.same(types(), ['worker-hello'])
})

t.test('a hello flood is pruned in short passes, each from where the last stopped', async t => {
  const { prune, add, types } = await log(t)
  add('decision', 30 * DAY)
  add('worker-hello', 10 * DAY, 3 * PRUNE_BATCH)
  add('unit-leased', DAY, 5)
  t.equal(prune(1), PRUNE_BATCH - 1, 'one pass looks at one batch of ids (the first is the decision)')
  t.equal(prune(1), PRUNE_BATCH)
  t.equal(prune(), PRUNE_BATCH + 1, 'the rest, stopping at the first young event')
  t.same(types(), ['decision', ...Array(5).fill('unit-leased')])
  add('worker-hello', 10 * DAY)
  t.equal(prune(), 0, 'an old-dated row written after young ones waits for them (ids grow with time)')
})

// The coordinator prunes on its own: a first pass a second after it starts, then every minute, with
// the retention `coordinator start --event-retention <days>` gives (7 days without it).
t.test('`coordinator start --event-retention 2` prunes traffic older than two days, soon after it starts', async t => {
  const dir = await mkdtemp(join(tmpdir(), 'arg-retention-start-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const app = await openCoordinator(dir)
  const now = Date.now()
  app.db.insert(events).values([
    { campaign: null, type: 'worker-hello', payload: {}, createdAt: now - 3 * DAY },
    { campaign: null, type: 'decision', payload: {}, createdAt: now - 3 * DAY },
    { campaign: null, type: 'unit-leased', payload: {}, createdAt: now - DAY },
  ]).run()
  app.close()
  const coord = new CoordinatorProcess(dir, ['--event-retention', '2'])
  t.teardown(() => coord.stop())
  await coord.start()
  const types = () => readDb(dir, db => (db.prepare('select type from events order by id').all() as { type: string }[]).map(r => r.type))
  // Until the first pass has run (a second after the start; every minute after that; tap's timeout bounds it).
  while (types().includes('worker-hello')) await new Promise(r => setTimeout(r, 200))
  t.ok(types().includes('decision') && types().includes('unit-leased'), 'the hello of three days ago went; the decision, and the lease of a day ago, stay')
})

t.test('`--event-retention` takes whole days, 1 or more', async t => {
  const r = spawnSync(process.execPath, [CLI, '--data', t.testdir({}), 'start', '--event-retention', '0'], { encoding: 'utf8' })
  t.not(r.status, 0)
  t.match(r.stderr, /--event-retention.*expected a whole number of days, 1 or more/)
})

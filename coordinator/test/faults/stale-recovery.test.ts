import t from 'tap'
import { readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import type { AssignmentEvent, WorkUnit } from '@autoresearch-grid/shared'
import { CoordinatorProcess, prepareDataDir, readDb, ROOT } from './coordinator-process.ts'
import { report, wsClient } from '../helpers.ts'
import { CPU } from './scripted-worker.ts'

// DESIGN §7: a promising candidate whose parent is no longer the best is carried onto the best (a
// three-way merge, or a rebase unit on a conflict). That step runs after the report's transaction;
// a crash in between leaves a `stale` experiment with no follow-up that nothing would revisit.
// The coordinator finds such experiments when it starts and carries them on then.
const SEED = readFileSync(join(ROOT, 'trainer/train.py'), 'utf8')
const edit = (from: string, to: string) => {
  if (!SEED.includes(from)) throw new Error(`train.py has no "${from}"`)
  return SEED.replace(from, to)
}

/** A scripted worker on the real coordinator's WebSocket: hello, then units as they are pushed. */
async function join_(url: string, token: string, name: string) {
  const { api, close } = wsClient(url, token)
  const { workerId } = await api.worker.hello.mutate({ name, hardware: CPU, fingerprints: {}, version: 't' })
  const units: WorkUnit[] = []
  let wake: (() => void) | null = null
  const sub = api.worker.assignments.subscribe({ workerId }, { onData: (e: AssignmentEvent) => { if (e.type === 'unit') { units.push(e.unit); wake?.() } } })
  const next = async () => {
    while (!units.length) await new Promise<void>(r => { wake = r })
    return units.shift()!
  }
  return { api, workerId, next, close: () => { sub.unsubscribe(); close() } }
}

t.test('stale candidates left without a follow-up by a crash are merged onto the best, or get a rebase unit, when the coordinator starts again', async t => {
  const dir = await mkdtemp(join(tmpdir(), 'arg-stale-recovery-'))
  const data = join(dir, 'data')
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  // Single runs (no verifications), so a win merges at once and the other two candidates go stale.
  const tokens = await prepareDataDir(data, { budget: 10, noise: { replications: 0, baselineRuns: 1 }, contributors: ['ann', 'ben', 'cal'] })
  const coord = new CoordinatorProcess(data)
  t.teardown(() => coord.kill9())
  await coord.start()

  const ann = await join_(coord.url, tokens[0], 'ann')
  t.teardown(ann.close)
  const baseline = await ann.next()
  t.equal(baseline.kind, 'baseline')
  await ann.api.worker.report.mutate({ workerId: ann.workerId, report: report(baseline, 3.0) })
  const [ben, cal] = await Promise.all([join_(coord.url, tokens[1], 'ben'), join_(coord.url, tokens[2], 'cal')])
  t.teardown(ben.close)
  t.teardown(cal.close)
  const [a, b, c] = await Promise.all([ann.next(), ben.next(), cal.next()])
  t.same([a, b, c].map(u => u.kind), ['explore', 'explore', 'explore'], 'three explorations of the same parent')
  const send = (w: typeof ann, u: WorkUnit, source: string) => w.api.worker.report.mutate({ workerId: w.workerId, report: report(u, 2.9, source) })
  const merged = await send(ann, a, edit('MATRIX_LR = 0.04', 'MATRIX_LR = 0.05'))
  t.match(merged.decision, /^merged/)
  // ben changed other lines (a clean three-way merge); cal changed the same line as ann (a conflict).
  const clean = await send(ben, b, edit('WARMDOWN_FRAC = 0.5', 'WARMDOWN_FRAC = 0.6'))
  const conflict = await send(cal, c, edit('MATRIX_LR = 0.04', 'MATRIX_LR = 0.03'))
  t.match(clean.decision, /^stale/)
  t.match(conflict.decision, /^stale/)
  await coord.kill9()

  // What a kill -9 between a stale report's transaction and its follow-up leaves on disk: the
  // experiments stale, no three-way merge, no rebase unit. (The live coordinator made them; they
  // are taken out here, in one transaction, because that window is too short to hit with a kill.)
  const db = new Database(join(data, 'coordinator.db'))
  db.transaction(() => {
    const followUps = db.prepare("select id from experiments where agent_notes like 'three-way merge of %'").all() as { id: string }[]
    for (const f of followUps) db.prepare('delete from work_units where target_experiment = ?').run(f.id)
    for (const f of followUps) db.prepare('delete from experiments where id = ?').run(f.id)
    db.prepare("delete from work_units where kind = 'rebase'").run()
  })()
  db.close()
  const orphans = () => readDb(data, db => db.prepare(`select e.id from experiments e where e.status = 'stale'
    and not exists (select 1 from work_units u where u.target_experiment = e.id and u.kind = 'rebase')`).all() as { id: string }[]).map(r => r.id).sort()
  t.same(orphans(), [clean.experimentId, conflict.experimentId].sort(), 'two stale candidates without a follow-up, as a crash leaves them')

  await coord.start()
  t.same(orphans(), [], 'after the restart, every stale candidate has its follow-up')
  const rows = readDb(data, db => ({
    mergedOnto: db.prepare("select id, status, parent_commit as parent from experiments where agent_notes = ?").all(`three-way merge of ${clean.experimentId}`) as { id: string; status: string; parent: string }[],
    rebases: db.prepare("select state from work_units where kind = 'rebase' and target_experiment = ?").all(conflict.experimentId) as { state: string }[],
    best: (db.prepare("select best_commit as c from campaigns where name = 'demo'").get() as { c: string }).c,
  }))
  t.equal(rows.mergedOnto.length, 1, "ben's change was merged onto the best by a three-way merge")
  t.equal(rows.mergedOnto[0]?.parent, rows.best, '... on top of the current best')
  t.equal(rows.mergedOnto[0]?.status, 'pending', '... and waits for its verification')
  const verify = readDb(data, db => db.prepare("select count(*) as n from work_units where kind = 'verify' and state = 'queued' and target_experiment = ?").get(rows.mergedOnto[0]?.id ?? '') as { n: number })
  t.equal(verify.n, 1, 'a verification of the merged code is queued')
  t.same(rows.rebases, [{ state: 'queued' }], "cal's conflicting change got a rebase unit")
  await coord.stop()
  await coord.start()
  t.same(readDb(data, db => db.prepare("select count(*) as n from work_units where kind = 'rebase' and target_experiment = ?").get(conflict.experimentId)), { n: 1 },
    'a second restart adds nothing: the follow-ups are there')
  await coord.stop()
})

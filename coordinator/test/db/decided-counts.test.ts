import t, { type Test } from 'tap'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createRng } from '@autoresearch-grid/shared'
import { openDb } from '../../src/db/open.ts'

// The campaign's decided candidates by status (db/schema.ts `decidedCounts`) are kept by triggers
// on `experiments`, whoever writes: every insert, status change, val_bpb filled in, and delete must
// leave them equal to counting the rows, and a database from before the table gets its counts.
const COUNT = `select campaign, status, count(*) as n from experiments where kind in ('explore', 'rebase')
  and status in ('kept', 'discarded', 'rejected') and val_bpb is not null group by campaign, status`
const KINDS = ['explore', 'rebase', 'baseline', 'verify']
const STATUSES = ['pending', 'kept', 'discarded', 'rejected', 'stale', 'measured']

type Row = { campaign: string; status: string; n: number }
const sorted = (rows: Row[]) => rows.filter(r => r.n !== 0).map(r => `${r.campaign}/${r.status}=${r.n}`).sort()

async function database(t: Test) {
  const dir = await mkdtemp(join(tmpdir(), 'arg-decided-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return { dir, file: join(dir, 'coordinator.db') }
}

t.test('the counts follow every insert, update and delete of an experiment', async t => {
  const { file } = await database(t)
  const db = openDb(file)
  t.teardown(() => db.$client.close())
  const sql = db.$client
  for (const name of ['a', 'b']) sql.prepare("insert into campaigns (name, branch, spec, best_commit) values (?, ?, '{}', 'x')").run(name, `autoresearch/${name}`)
  const rng = createRng(3)
  const pick = <T>(xs: T[]) => xs[Math.floor(rng.next() * xs.length)]!
  const ids: string[] = []
  for (let i = 0; i < 1500; i++) {
    const op = ids.length < 20 ? 0 : Math.floor(rng.next() * 5)
    if (op <= 1) {
      const id = `e${i}`
      sql.prepare(`insert into experiments (id, unit_id, campaign, kind, worker_id, contributor_id, hardware_class, parent_commit, "commit", description, diff, source_hash, status, val_bpb, created_at)
        values (?, ?, ?, ?, 'w', 'c', 'cpu', 'p', 'x', '', '', 'h', ?, ?, ?)`).run(id, `u${i}`, pick(['a', 'b']), pick(KINDS), pick(STATUSES), rng.next() < 0.2 ? null : rng.next(), i)
      ids.push(id)
    } else if (op === 2) sql.prepare('update experiments set status = ? where id = ?').run(pick(STATUSES), pick(ids))
    else if (op === 3) sql.prepare('update experiments set val_bpb = ?, kind = ? where id = ?').run(rng.next() < 0.3 ? null : rng.next(), pick(KINDS), pick(ids))
    else {
      const id = pick(ids)
      sql.prepare('delete from experiments where id = ?').run(id)
      ids.splice(ids.indexOf(id), 1)
    }
    if (i % 100 === 99) t.same(sorted(sql.prepare('select campaign, status, n from decided_counts').all() as Row[]), sorted(sql.prepare(COUNT).all() as Row[]), `after ${i + 1} writes`)
  }
  t.ok((sql.prepare(COUNT).all() as Row[]).length >= 4, 'the writes left decided candidates of both campaigns')
})

t.test('a database from before the table gets the counts of what it holds', async t => {
  const { file } = await database(t)
  // The migrations up to 0009, then rows, then the rest: as a coordinator updated in place.
  const { cpSync, mkdtempSync, readFileSync, writeFileSync } = await import('node:fs')
  const all = new URL('../../drizzle', import.meta.url).pathname
  const upTo9 = mkdtempSync(join(tmpdir(), 'arg-migrations-'))
  t.teardown(() => rm(upTo9, { recursive: true, force: true }))
  cpSync(all, upTo9, { recursive: true })
  const journal = JSON.parse(readFileSync(join(all, 'meta', '_journal.json'), 'utf8'))
  journal.entries = journal.entries.filter((e: { idx: number }) => e.idx <= 9)
  writeFileSync(join(upTo9, 'meta', '_journal.json'), JSON.stringify(journal))
  const old = openDb(file, upTo9)
  old.$client.prepare("insert into campaigns (name, branch, spec, best_commit) values ('a', 'autoresearch/a', '{}', 'x')").run()
  const add = old.$client.prepare(`insert into experiments (id, unit_id, campaign, kind, worker_id, contributor_id, hardware_class, parent_commit, "commit", description, diff, source_hash, status, val_bpb, created_at)
    values (?, ?, 'a', ?, 'w', 'c', 'cpu', 'p', 'x', '', '', 'h', ?, ?, 0)`)
  add.run('e1', 'u1', 'explore', 'kept', 1.0)
  add.run('e2', 'u2', 'explore', 'discarded', 1.1)
  add.run('e3', 'u3', 'rebase', 'discarded', 1.2)
  add.run('e4', 'u4', 'explore', 'discarded', null)
  add.run('e5', 'u5', 'verify', 'measured', 1.0)
  old.$client.close()
  const db = openDb(file)
  t.teardown(() => db.$client.close())
  t.same(sorted(db.$client.prepare('select campaign, status, n from decided_counts').all() as Row[]), ['a/discarded=2', 'a/kept=1'])
  db.$client.prepare("update experiments set status = 'kept' where id = 'e2'").run()
  t.same(sorted(db.$client.prepare('select campaign, status, n from decided_counts').all() as Row[]), ['a/discarded=1', 'a/kept=2'], 'and keeps them from then on')
})

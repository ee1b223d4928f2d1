import t from 'tap'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { simpleGit } from 'simple-git'
import type { AssignmentEvent, WorkUnit } from '@autoresearch-grid/shared'
import { CoordinatorProcess, experimentRefs, prepareDataDir, readDb } from './coordinator-process.ts'
import { CPU, httpClient, metrics, report, wsClient } from '../helpers.ts'
import { sleep, until } from '../../../shared/test/support/until.ts'

// What a restart of the real `coordinator start` must keep: experiment refs written at the moment
// of a crash, the leases of workers that kept training while it was down, and a quick exit on
// SIGTERM with workers connected.

async function dataDir(t: { teardown(fn: () => unknown): void }, budget: number, contributors: string[]) {
  const dir = await mkdtemp(join(tmpdir(), 'arg-restart-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const data = join(dir, 'data')
  const tokens = await prepareDataDir(data, { budget, noise: { replications: 0, baselineRuns: 1 }, contributors })
  return { data, tokens }
}

/** A worker that said hello over a WebSocket and listens to its feed (capacity: units held at once). */
async function join_(t: { teardown(fn: () => unknown): void }, url: string, token: string, name: string, capacity = 1) {
  const { api, close } = wsClient(url, token)
  const { workerId } = await api.worker.hello.mutate({ name, hardware: CPU, fingerprints: {}, version: 't' })
  const units: WorkUnit[] = []
  const sub = api.worker.assignments.subscribe({ workerId, capacity }, { onData: (e: AssignmentEvent) => { if (e.type === 'unit') units.push(e.unit) } })
  t.teardown(() => { sub.unsubscribe(); close() })
  const next = async (kind?: string) => {
    const i = await until(`a ${kind ?? ''} unit for ${name}`, () => { const i = units.findIndex(u => !kind || u.kind === kind); return i >= 0 && { i } }, { everyMs: 50 })
    return units.splice(i.i, 1)[0]
  }
  return { workerId, next, close: () => { sub.unsubscribe(); close() } }
}

t.test('a crash between an experiment\'s transaction and its ref\'s write leaves the ref missing, and the restart writes it', async t => {
  const { data, tokens: [token] } = await dataDir(t, 10, ['ann'])
  const coord = new CoordinatorProcess(data)
  t.teardown(() => coord.stop())
  coord.env = { AUTORESEARCH_TEST_CRASH_AT: 'experiment-recorded' }
  await coord.start()
  const w = await join_(t, coord.url, token, 'gpu0', 2)
  const explore = await w.next('explore')
  const proc = coord.proc!
  const exited = new Promise<NodeJS.Signals | null>(resolve => proc.once('exit', (_code, signal) => resolve(signal)))
  const r = { ...report(explore, 1.49, 'DEPTH = 5\n'), description: 'deeper' }
  const answer = await httpClient(coord.url, token).worker.report.mutate({ workerId: w.workerId, report: r }).then(() => 'answered', (err: Error) => err.message)
  t.equal(await exited, 'SIGKILL', `the coordinator killed itself after recording the experiment (the report got: ${answer})`)
  w.close()

  const recorded = readDb(data, db => db.prepare('select id, "commit" as c from experiments where unit_id = ?').get(explore.id) as { id: string; c: string } | undefined)
  t.ok(recorded, 'the experiment was recorded before the crash')
  if (!recorded) return
  t.notOk((await experimentRefs(data)).has(recorded.id), 'its refs/experiments/<id> was not written yet: refs go in batches after the transaction')
  const git = simpleGit(join(data, 'git'))
  t.equal((await git.raw(['cat-file', '-t', recorded.c])).trim(), 'commit', 'but the commit it will name was on disk before the transaction')

  coord.env = {}
  await coord.start()
  t.equal((await git.raw(['rev-parse', `refs/experiments/${recorded.id}`])).trim(), recorded.c, 'restored at start, naming the experiment\'s commit')
  const events = readDb(data, db => (db.prepare("select count(*) as n from events where type = 'ref-restored'").get() as { n: number }).n)
  t.equal(events, 1, 'and logged')
  const again = await httpClient(coord.url, token).worker.report.mutate({ workerId: w.workerId, report: r })
  t.same([again.experimentId, again.duplicate], [recorded.id, true], 'the re-sent report is answered with the recorded experiment')
  t.equal((await git.raw(['rev-parse', `refs/experiments/${recorded.id}`])).trim(), recorded.c, 'and its ref stays: a duplicate takes nothing back')
  t.comment(`RESULT crash-after-record: ref-missing-after-kill=1 restored-at-start=1`)
})

t.test('leases that ran out while the coordinator was down are held for one margin after it restarts', async t => {
  // The lease is granted with a short margin, so that the coordinator is soon down for longer than
  // all of it; it restarts with a long one, so that on a loaded machine too the worker's heartbeat
  // below comes well inside the margin it is held for.
  const BUDGET = 1
  const SHORT = 2
  const MARGIN = 120
  const { data, tokens: [token, ...others] } = await dataDir(t, BUDGET, ['bo', 'cy', 'di'])
  const coord = new CoordinatorProcess(data, ['--lease-margin', String(SHORT)])
  t.teardown(() => coord.stop())
  await coord.start()
  const w = await join_(t, coord.url, token, 'gpu0')
  const unit = await w.next()
  await coord.kill9()
  w.close()
  // Down for longer than the whole lease (budget + margin) from the moment it was granted.
  const expires = readDb(data, db => (db.prepare('select lease_expires_at as e from work_units where id = ?').get(unit.id) as { e: number }).e)
  const downFrom = Date.now()
  while (Date.now() < expires + 500) await sleep(100)
  coord.startArgs.splice(0, coord.startArgs.length, '--lease-margin', String(MARGIN))
  const startedAt = Date.now()
  await coord.start()
  const down = coord.listeningAt.at(-1)! - downFrom
  // The expiry sweep runs every 2 s from the moment the coordinator opened its data: wait past the
  // first (on a loaded machine it may come later; then this checks less, but never fails wrongly).
  await sleep(2600)
  const row = readDb(data, db => db.prepare('select state, worker_id as w, lease_expires_at as e from work_units where id = ?').get(unit.id) as { state: string; w: string; e: number })
  t.same([row.state, row.w], ['leased', w.workerId], `still leased to its worker after ${down} ms down and the first expiry sweep`)
  // Order, not speed: renewed by the restart (not before it), for one margin from it (no longer).
  t.ok(row.e >= startedAt + MARGIN * 1000 && row.e <= coord.listeningAt.at(-1)! + MARGIN * 1000, `held for one margin from the restart, no longer (${row.e - coord.listeningAt.at(-1)!} ms after listening)`)

  // The worker was training all along: it reconnects, beats, and delivers.
  const api = httpClient(coord.url, token)
  const beat = await api.worker.heartbeat.mutate({ workerId: w.workerId, units: [{ unitId: unit.id, leaseToken: unit.leaseToken, progress: null }] })
  t.same(beat.cancelled, [], 'its heartbeat renews the lease')
  const reply = await api.worker.report.mutate({ workerId: w.workerId, report: { ...report(unit, 1.5), metrics: metrics(1.5, BUDGET) } })
  t.equal(reply.duplicate, false, 'and its result is stored')
  const expired = readDb(data, db => (db.prepare("select count(*) as n from events where type = 'lease-expired'").get() as { n: number }).n)
  t.equal(expired, 0, 'no lease expired')
  t.comment(`RESULT lease-across-restart: down-ms=${down} lease-ms=${(BUDGET + MARGIN) * 1000} kept=1 expired=${expired}`)

  // The same coordinator, reused to spare a start: an orderly stop.
  t.test('then SIGTERM stops it while workers hold WebSockets open', async t => {
    const workers = await Promise.all([token, ...others].map((tk, i) => join_(t, coord.url, tk, `gpu${i}`)))
    await Promise.all(workers.slice(1).map(w => w.next()))
    const proc = coord.proc!
    const exit = new Promise<number | null>(resolve => proc.once('exit', code => resolve(code)))
    const started = Date.now()
    proc.kill('SIGTERM')
    const code = await exit
    const ms = Date.now() - started
    // Before the fix WebSockets kept the HTTP server open until killed; how soon it goes is reported, not asserted.
    t.equal(code, 0, `it exits by itself, cleanly, ${ms} ms after SIGTERM with ${workers.length} workers connected`)
    t.comment(`RESULT sigterm: workers=${workers.length} exit-ms=${ms} code=${code}`)
  })
})

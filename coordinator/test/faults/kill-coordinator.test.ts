import t from 'tap'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { branchCommits, CoordinatorProcess, experimentRefs, prepareDataDir, readDb } from './coordinator-process.ts'
import { ScriptedWorker } from './scripted-worker.ts'
import { scriptedResult } from './trained-value.ts'
import { sleep, until } from '../../../shared/test/support/until.ts'

// DESIGN §1 and §11: "a coordinator restart loses nothing"; durable before acknowledged.
// Three scripted workers report as fast as they can to the real CLI coordinator while it is
// killed with SIGKILL at random moments (mid-report, mid-merge, mid-lease) and restarted on the
// same data dir and port. Their WebSockets reconnect by themselves. How soon they are back is
// reported (max-resume-ms), not asserted: a loaded machine stretches it (12.8 s once at load 20).
const KILLS = 5

t.test('kill -9 of the coordinator with units in flight: no answered result lost, no merge twice, every worker back after each restart', async t => {
  const dir = await mkdtemp(join(tmpdir(), 'arg-kill-coord-'))
  const data = join(dir, 'data')
  t.teardown(() => (t.passing() ? rm(dir, { recursive: true, force: true }) : t.comment(`data dir kept for a look: ${data}`)))
  const names = ['ann', 'ben', 'cat']
  // The single-run ratchet: every win merges at once, so merges happen while the kills do.
  const tokens = await prepareDataDir(data, { budget: 5, noise: { replications: 0, baselineRuns: 1 }, contributors: names })

  // A lease outlives a restart: the margin is what a worker gets to come back after a crash.
  const coord = new CoordinatorProcess(data, ['--lease-margin', '30'])
  t.teardown(() => coord.kill9())
  await coord.start()
  let n = 0
  const workers = names.map((name, i) => new ScriptedWorker({
    url: coord.url, token: tokens[i], name,
    result: unit => scriptedResult(unit, n++ % 2 === 0, name),
    trainMs: () => 20 + Math.random() * 150,
  }))
  t.teardown(() => Promise.all(workers.map(w => w.stop())))
  await Promise.all(workers.map(w => w.start()))

  const t0 = Date.now()
  const phase = (what: string) => t.comment(`${what} at ${((Date.now() - t0) / 1000).toFixed(1)} s`)
  const resumeMs: number[] = []
  const inFlightAtKill: number[] = []
  let resent = 0
  for (let k = 0; k < KILLS; k++) {
    await sleep(300 + Math.random() * 1200)
    const answeredBefore = workers.map(w => w.replies.at(-1))
    inFlightAtKill.push(workers.reduce((s, w) => s + w.inFlight, 0))
    await coord.kill9()
    await sleep(Math.random() * 500)
    await coord.start()
    const back = coord.listeningAt.at(-1)!
    // Every worker hears from the coordinator again (a unit or an answer) without being restarted.
    await until(`every worker to hear from the coordinator after restart ${k + 1}`, () => workers.every(w => w.heardAfter(back) !== Infinity), { everyMs: 100 })
    for (const w of workers) resumeMs.push(w.heardAfter(back))
    // A spool that re-sends what was already answered before the crash gets the same answer back.
    for (const [i, w] of workers.entries()) {
      const before = answeredBefore[i]
      if (!before) continue
      const again = await w.resend(before.unitId)
      resent++
      t.equal(again.duplicate, true, `${w.o.name}: a report answered before the crash is a duplicate after it`)
      t.equal(again.experimentId, before.experimentId, `${w.o.name}: ... with the same experiment`)
    }
  }
  phase('kills done')
  await sleep(1000)
  const undelivered = await Promise.all(workers.map(w => w.drain()))
  t.same(undelivered, [0, 0, 0], 'every result was answered in the end')
  phase('drained')
  await Promise.all(workers.map(w => w.stop()))
  await coord.stop()
  phase('stopped')
  // Recovery runs on start: one more (orderly) start and stop, then look at what is on disk.
  await coord.start()
  phase('started')
  await coord.stop()

  phase('restarted and stopped')
  const replies = workers.flatMap(w => w.replies)
  const refusals = workers.flatMap(w => w.refusals)
  const rows = readDb(data, db => db.prepare('select id, unit_id as unitId, val_bpb as valBpb, status, kind from experiments').all() as
    { id: string; unitId: string; valBpb: number | null; status: string; kind: string }[])
  const byUnit = new Map(rows.map(r => [r.unitId, r]))
  // An answer is a promise: the experiment it names is on disk, for that unit, with that number.
  const lost = replies.filter(r => {
    const row = byUnit.get(r.unitId)
    return !row || row.id !== r.experimentId || (r.valBpb !== null && row.valBpb !== r.valBpb)
  })
  t.same(lost, [], `all ${replies.length} answers are on disk as answered`)
  t.equal(rows.length, new Set(rows.map(r => r.unitId)).size, 'one experiment per unit')
  t.same(refusals.filter(r => !/re-assigned|leased to another|already reported by another worker|cancelled/.test(r.message)), [], 'nothing refused but stale leases')

  const merges = readDb(data, db => db.prepare('select experiment_id as experimentId, best_after as bestAfter from merges where reverted = 0').all() as
    { experimentId: string; bestAfter: string }[])
  const branch = await branchCommits(data)
  const best = readDb(data, db => (db.prepare("select best_commit as c from campaigns where name = 'demo'").get() as { c: string }).c)
  t.equal(branch.length, merges.length + 1, `the branch holds the seed and one commit per merge (${merges.length} merges)`)
  t.equal(new Set(merges.map(m => m.experimentId)).size, merges.length, 'no experiment merged twice')
  t.ok(merges.every(m => branch.includes(m.bestAfter)), 'every merge is on the branch')
  t.equal(branch[0], best, 'the branch tip is the recorded best')
  t.equal(rows.filter(r => r.status === 'merging').length, 0, 'no merge left half done')
  t.ok(merges.length > 0, 'merges happened during the crashes')
  const refs = await experimentRefs(data)
  const committed = rows.filter(r => r.kind === 'explore' || r.kind === 'rebase')
  const missingRefs = committed.filter(r => !refs.has(r.id)).map(r => r.id)
  t.same(missingRefs, [], 'every explored commit keeps its refs/experiments/<id>')

  // A promising candidate whose parent was overtaken is carried onto the new best (DESIGN §7): by a
  // three-way merge the coordinator makes, or by a rebase unit. A crash must not drop that step.
  const orphans = readDb(data, db => db.prepare(`select e.id from experiments e where e.status = 'stale'
    and not exists (select 1 from work_units u where u.target_experiment = e.id and u.kind = 'rebase')`).all() as { id: string }[]).map(r => r.id)
  t.same(orphans, [], 'every stale candidate was carried onto the new best (recoverMerges: staleWithoutFollowUp)')

  const maxResume = Math.max(...resumeMs)
  t.equal(resumeMs.length, KILLS * workers.length, `every worker heard from the coordinator after each of the ${KILLS} restarts (at most ${maxResume} ms after)`)
  const duplicates = replies.filter(r => r.duplicate).length
  t.comment(`RESULT kill-coordinator: kills=${KILLS} answered=${replies.length} duplicates=${duplicates} in-flight-at-kill=${inFlightAtKill.reduce((a, b) => a + b, 0)} ` +
    `resent-after-restart=${resent} refused=${refusals.length} experiments=${rows.length} stale-without-follow-up=${orphans.length} merges=${merges.length} branch-commits=${branch.length} ` +
    `lost=${lost.length} max-resume-ms=${maxResume} report-attempts=${workers.reduce((s, w) => s + w.attempts, 0)} failed-attempts=${workers.reduce((s, w) => s + w.failedAttempts, 0)}`)
})

import t, { type Test } from 'tap'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openDb, type Db } from '../../src/db/open.ts'
import { eq } from 'drizzle-orm'
import { campaigns, contributors, experiments, measurements } from '../../src/db/schema.ts'
import { suspectContributors } from '../../src/units/suspects.ts'

// The suspects of a campaign (units/suspects.ts) keep its runs in memory and bring them up to date
// with each new measurement. Whatever order the runs came in, and whatever was rolled back, the
// answer is the one a connection that reads every run at once gives.

const PRIOR = 0.01
const CLS = 'cpu-x86_64'

async function open(t: Test): Promise<{ db: Db; fresh: () => string[] }> {
  const dir = await mkdtemp(join(tmpdir(), 'arg-suspects-'))
  const file = join(dir, 'coordinator.db')
  const db = openDb(file)
  t.teardown(async () => { db.$client.close(); await rm(dir, { recursive: true, force: true }) })
  db.insert(campaigns).values({ name: 'demo', branch: 'autoresearch/demo', spec: {}, bestCommit: 'c0' }).run()
  // Another connection to the same file: nothing remembered, every run read in one go.
  const fresh = () => {
    const other = openDb(file)
    try {
      return suspectContributors(other, 'demo', PRIOR)
    } finally {
      other.$client.close()
    }
  }
  return { db, fresh }
}

let n = 0
/** One run of `commit` by `contributor` (a baseline unless told), as a report records it. */
function run(db: Pick<Db, 'insert'>, contributor: string, commit: string, valBpb: number, kind: 'baseline' | 'verify' | 'explore' = 'baseline'): void {
  const id = `e${++n}`
  db.insert(experiments).values({ id, unitId: `u${n}`, campaign: 'demo', kind, workerId: `w_${contributor}`, contributorId: contributor, hardwareClass: CLS,
    parentCommit: commit, commit, description: kind, diff: '', sourceHash: 'h', status: kind === 'explore' ? 'pending' : 'measured', createdAt: n }).run()
  db.insert(measurements).values({ campaign: 'demo', commit, hardwareClass: CLS, valBpb, experimentId: id, workerId: `w_${contributor}`, kind }).run()
}

/** Five honest contributors and one whose every run is 5σ low, commit after commit, interleaved. */
function* reports(): Generator<[string, string, number]> {
  for (let c = 0; c < 6; c++) {
    for (const [k, who] of ['ann', 'bob', 'cat', 'dan', 'eve', 'low'].entries()) {
      const noise = (((c * 7 + k * 3) % 5) - 2) * PRIOR * 0.4
      yield [who, `c${c}`, 1.5 + c / 100 + noise - (who === 'low' ? 5 * PRIOR : 0)]
    }
  }
}

t.test('suspects found from runs added one at a time are those found reading every run at once', async t => {
  const { db, fresh } = await open(t)
  let step = 0
  for (const [who, commit, v] of reports()) {
    run(db, who, commit, v)
    const incremental = suspectContributors(db, 'demo', PRIOR)
    if (++step % 6 === 0) t.same(incremental, fresh(), `after ${step} runs: ${JSON.stringify(incremental)}`)
  }
  t.same(suspectContributors(db, 'demo', PRIOR), ['low'], 'the scenario makes a suspect: the 5σ-low reporter')
})

t.test('a run taken in by a transaction that was rolled back stops counting', async t => {
  const { db, fresh } = await open(t)
  for (const [who, commit, v] of reports()) run(db, who, commit, v)
  t.same(suspectContributors(db, 'demo', PRIOR), ['low'])
  // Runs that clear the low reporter (on each commit, five runs 1σ high bring its mean back to
  // the others'), seen and then rolled back.
  t.throws(() => db.transaction(tx => {
    for (let c = 0; c < 6; c++) for (let i = 0; i < 5; i++) run(tx, 'low', `c${c}`, 1.5 + c / 100 + PRIOR)
    t.same(suspectContributors(tx, 'demo', PRIOR), [], 'inside the transaction its runs count')
    throw new Error('rolled back')
  }))
  run(db, 'ann', 'c6', 1.56)
  t.same(suspectContributors(db, 'demo', PRIOR), fresh(), 'the rolled-back runs are gone from the answer')
  t.same(suspectContributors(db, 'demo', PRIOR), ['low'])
})

t.test('claims 5σ below what others measured make their author a suspect, among many claims nobody else ran', async t => {
  const { db, fresh } = await open(t)
  const noise = (i: number) => (((i * 7) % 5) - 2) * PRIOR * 0.4
  for (let c = 0; c < 4; c++) {
    // Explorations of honest contributors that nobody verified: their commits have claims only.
    for (let i = 0; i < 30; i++) run(db, ['ann', 'bob', 'cat'][i % 3], `x${c}-${i}`, 1.5 + noise(i), 'explore')
    run(db, 'forger', `f${c}`, 1.5 - 5 * PRIOR, 'explore')
    for (const [k, who] of ['ann', 'bob', 'cat'].entries()) run(db, who, `f${c}`, 1.5 + noise(c + k), 'verify')
    // An honest claim, verified: it sits within noise of its verifications.
    run(db, 'dan', `d${c}`, 1.5 - PRIOR, 'explore')
    for (const [k, who] of ['ann', 'bob'].entries()) run(db, who, `d${c}`, 1.5 + noise(c + k + 1), 'verify')
    t.same(suspectContributors(db, 'demo', PRIOR), fresh(), `after ${c + 1} verified claims each, the answer is a fresh connection's`)
  }
  t.same(suspectContributors(db, 'demo', PRIOR), ['forger'], 'the forger, by its fourth verified claim; the honest author is not')
})

t.test('an answer kept across claims nobody else ran is the one a fresh connection gives, and a claim on a commit others ran is weighed', async t => {
  const { db, fresh } = await open(t)
  const noise = (i: number) => (((i * 7) % 5) - 2) * PRIOR * 0.4
  const same = (what: string) => t.same(suspectContributors(db, 'demo', PRIOR), fresh(), what)
  for (let c = 0; c < 4; c++) {
    // Others run the forger's commits first; its claims come after (a late report), so each claim
    // joins a commit that has runs other than claims and must be weighed.
    for (const [k, who] of ['ann', 'bob', 'cat'].entries()) run(db, who, `f${c}`, 1.5 + noise(c + k), 'verify')
    same(`commit f${c} verified`)
    // Lone claims between them: asked after each one, the answer is kept, and still right.
    for (let i = 0; i < 5; i++) {
      run(db, ['ann', 'bob', 'cat'][i % 3], `x${c}-${i}`, 1.5 + noise(i), 'explore')
      same(`claim x${c}-${i}, which nobody else ran`)
    }
    run(db, 'forger', `f${c}`, 1.5 - 5 * PRIOR, 'explore')
    same(`the forger's claim on f${c}, which others ran`)
  }
  t.same(suspectContributors(db, 'demo', PRIOR), ['forger'], 'claims that came after the runs that contradict them still make a suspect')
})

/** A decided claim of `contributor` (an exploration), rejected as unreproduced above the cap or discarded. */
function decided(db: Pick<Db, 'insert'>, contributor: string, unreproduced: boolean): void {
  const id = `e${++n}`
  db.insert(experiments).values({ id, unitId: `u${n}`, campaign: 'demo', kind: 'explore', workerId: `w_${contributor}`, contributorId: contributor, hardwareClass: CLS,
    parentCommit: 'c0', commit: `x${n}`, description: 'explore', diff: '', sourceHash: 'h', createdAt: n,
    ...(unreproduced ? { status: 'rejected', reason: 'unreproduced-improvement' } : { status: 'discarded', reason: 'not-promising' }) }).run()
}

t.test('two unreproduced claims above the cap far apart among many (honest wild runs) make no suspect; two close together do', async t => {
  const { db, fresh } = await open(t)
  const others = (k: number) => { for (let i = 0; i < k; i++) for (const who of ['ann', 'bob', 'hal']) decided(db, who, false) }
  others(20)
  decided(db, 'hal', true)
  others(30)
  decided(db, 'hal', true)
  others(20)
  t.same(suspectContributors(db, 'demo', PRIOR), [], 'hal: two unreproduced, 50 of its own claims between them')
  decided(db, 'fay', true)
  decided(db, 'ann', false)
  decided(db, 'fay', true)
  t.same(suspectContributors(db, 'demo', PRIOR), ['fay'], 'fay: two in a row')
  t.same(suspectContributors(db, 'demo', PRIOR), fresh())
})

t.test("the maintainer's clearings end a suspicion at the next look, two clearings in the same millisecond too", async t => {
  const { db, fresh } = await open(t)
  const who = ['ann', 'bob', 'cat', 'dan', 'eve', 'low', 'lo2']
  db.insert(contributors).values(who.map(id => ({ id, name: id }))).run()
  // The scenario above, with a second contributor whose every run is as low as the first's.
  for (const [c, commit, v] of reports()) {
    run(db, c, commit, v)
    if (c === 'low') run(db, 'lo2', commit, v)
  }
  t.same(suspectContributors(db, 'demo', PRIOR).sort(), ['lo2', 'low'], 'both low reporters are suspects')
  // admin.clearSuspect's write, at one fixed time for both: the second clearing leaves the latest
  // clearing time as it was, and must still be seen.
  const clear = (id: string) => db.update(contributors).set({ suspectClearedAt: 1_000_000 }).where(eq(contributors.id, id)).run()
  clear('low')
  t.same(suspectContributors(db, 'demo', PRIOR), ['lo2'], 'the cleared one is no longer a suspect: its runs before the clearing stop counting')
  clear('lo2')
  t.same(suspectContributors(db, 'demo', PRIOR), [], 'nor the second, cleared in the same millisecond')
  t.same(fresh(), [], 'as a connection that reads everything at once finds')
})

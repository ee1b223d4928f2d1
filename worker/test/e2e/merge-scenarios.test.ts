import t, { type Test } from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createHash } from 'node:crypto'
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { execa } from 'execa'
import type { NoisePolicy } from '@autoresearch-grid/shared'
import { findPython } from '@autoresearch-grid/trainer'
import { sharedCorpus } from '../fixtures/corpus.ts'
import { CoordinatorProcess, prepareDataDir, readDb, ROOT } from '../../../coordinator/test/faults/coordinator-process.ts'
import { sleep, until } from '../../../shared/test/support/until.ts'
import { workerCli } from '../../../shared/test/support/cli.ts'

// The ratchet's concurrent-work paths (DESIGN §7) with the whole system as a user runs it: the real
// coordinator CLI, two real `worker join` processes, the real CPU trainer. Training is noisy, so
// the test controls the EDITS, not the numbers: a scripted `--agent-cmd` (fixtures/scripted-agent.mjs)
// deletes known comment lines, and the noise policy makes any sane run of a deletion a win (a
// simplification with minDelta 100); the decision rule itself is tested in coordinator/test/ratchet.
// Here the plumbing is under test: verification by the other worker, the three-way merge, the
// rebase unit, the branch and its authors as `git clone` sees them.
const TRAIN_PY = readFileSync(join(ROOT, 'trainer/train.py'), 'utf8')
/**
 * The edits delete whole-line comments of the real train.py, found by shape rather than by line
 * number so that editing the trainer does not move them onto code: runs of consecutive comment
 * lines that occur once in the file: the first `count` runs of at least `min` lines that lie
 * `apart` lines from `avoid` and from each other.
 */
function commentRuns(count: number, min: number, avoid: string[][] = [], apart = 20): string[][] {
  const all = TRAIN_PY.split('\n')
  const taken = avoid.flat().map(l => all.indexOf(l))
  const runs: string[][] = []
  for (let i = 0; i < all.length; i++) {
    let j = i
    while (j < all.length && /^# \S/.test(all[j]) && all.indexOf(all[j]) === all.lastIndexOf(all[j])) j++
    if (j - i >= min && taken.every(k => k < i - apart || k >= j + apart) && runs.every(r => Math.abs(all.indexOf(r[0]) - i) > apart)) runs.push(all.slice(i, j))
    i = j
  }
  if (runs.length < count) throw new Error(`trainer/train.py has fewer than ${count} runs of ${min}+ comment lines ${apart} lines apart`)
  return runs.slice(0, count)
}
const AGENT = join(ROOT, 'worker/test/fixtures/scripted-agent.mjs')
// The fixed rule: one verification decides, which these scripts count on (the default, `parallel`,
// asks two other contributors and more runs).
const NOISE: Partial<NoisePolicy> = { policy: 'fixed', replications: 1, baselineRuns: 1, minDelta: 100, maxImprovement: 50, budgetTolerance: 0.9 }
const BUDGET = 2
const CONTRIBUTORS = ['alice', 'bob']

const python = await findPython()

/** The test suite's one prepared corpus for every worker of every scenario (fixtures/corpus.ts). */
const corpus = (await sharedCorpus()).root

class WorkerProcess {
  proc: ChildProcess | null = null
  log = ''
  constructor(readonly name: string, readonly token: string, readonly state: string, readonly env: Record<string, string>) {}

  /** `worker join` with this worker's state; its prepared data is the shared corpus. */
  async start(url: string): Promise<void> {
    await mkdir(this.state, { recursive: true })
    await symlink(corpus, join(this.state, 'data')).catch(() => {})
    this.proc = spawn(process.execPath, [workerCli, 'join', url, '--token', this.token, '--name', this.name, '--state', this.state,
      '--no-pipeline', '--agent-cmd', `${process.execPath} ${AGENT}`], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, AUTORESEARCH_PYTHON: python.path, ...this.env } })
    const keep = (b: Buffer) => { this.log = (this.log + b).slice(-20_000) }
    this.proc.stdout!.on('data', keep)
    this.proc.stderr!.on('data', keep)
  }

  signal(sig: NodeJS.Signals): void {
    if (this.proc && this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill(sig)
  }

  async stop(): Promise<void> {
    const p = this.proc
    if (!p || p.exitCode !== null || p.signalCode !== null) return
    const gone = new Promise(r => p.once('exit', r))
    p.kill('SIGCONT')
    p.kill('SIGTERM')
    const timer = setTimeout(() => p.kill('SIGKILL'), 10_000)
    await gone
    clearTimeout(timer)
  }
}

interface Scenario {
  dir: string
  /** Lets the agents make their edit `i` (fixtures/scripted-agent.mjs). */
  phase(i: number, onCommit?: string): Promise<void>
  data: string
  coord: CoordinatorProcess
  workers: WorkerProcess[]
  sql<T>(query: string, ...args: unknown[]): T[]
  /** Waits, with no deadline of its own (shared/test/support/until.ts); a long wait prints the workers' logs and the queue. */
  until<T>(what: string, fn: () => T | undefined | false): Promise<T>
}

/** A coordinator on a fresh data dir and one worker per contributor, each with its own edit. */
async function scenario(t: Test, o: { plans: string[][][]; leaseMargin?: number; names?: string[]; noise?: Partial<NoisePolicy> }): Promise<Scenario> {
  const dir = await mkdtemp(join(tmpdir(), 'arg-merge-'))
  const data = join(dir, 'data')
  const names = o.names ?? CONTRIBUTORS.slice(0, o.plans.length)
  const tokens = await prepareDataDir(data, { budget: BUDGET, noise: { ...NOISE, ...o.noise }, contributors: names })
  const coord = new CoordinatorProcess(data, ['--lease-margin', String(o.leaseMargin ?? 60)])
  await coord.start()
  await mkdir(join(dir, 'agents'))
  const workers = names.map((name, i) => new WorkerProcess(`w-${name}`, tokens[i], join(dir, name), {
    ARG_AGENT_NAME: name, ARG_AGENT_PLAN: JSON.stringify(o.plans[i]), ARG_AGENT_STATE: join(dir, 'agents'), ARG_AGENT_BARRIER: names.filter((_, j) => o.plans[j].length).join(','),
  }))
  const s: Scenario = {
    dir, data, coord, workers,
    // The phase file names the source the phase's edits must be made on (the best's train.py): a
    // unit a worker leased earlier and still holds, on an older best, gets no edit.
    phase: async (i, onCommit) => {
      const source = onCommit ? (await execa('git', ['show', `${onCommit}:train.py`], { cwd: join(data, 'git'), stripFinalNewline: false })).stdout : ''
      await writeFile(join(dir, 'agents', `phase-${i}`), source && createHash('sha256').update(source).digest('hex'))
    },
    sql: <T>(query: string, ...args: unknown[]) => readDb(data, db => db.prepare(query).all(...args) as T[]),
    until: <T>(what: string, fn: () => T | undefined | false) => until(what, () => {
      // A worker that exited (it refuses to run, say) will not bring what is waited for: say so now.
      const gone = workers.find(w => w.proc && (w.proc.exitCode !== null || w.proc.signalCode !== null))
      if (gone) throw new Error(`${gone.name} exited while waiting for ${what}:\n${gone.log.slice(-3000)}`)
      return fn()
    }, { everyMs: 300, describe: () => [
      ...workers.map(w => `${w.name}:\n${w.log.slice(-3000)}`),
      `units: ${JSON.stringify(readDb(data, db => db.prepare('select id, kind, state, worker_id, target_experiment, reserved_for, reserved_until from work_units').all()))}`,
      `experiments: ${JSON.stringify(readDb(data, db => db.prepare('select id, kind, unit_id, worker_id, status, decision from experiments').all()))}`,
    ].join('\n') }),
  }
  t.teardown(async () => {
    await Promise.all(workers.map(w => w.stop()))
    await coord.stop()
    if (t.passing()) await rm(dir, { recursive: true, force: true })
    else t.comment(`data dir kept for a look: ${dir}`)
  })
  for (const w of workers) await w.start(coord.url)
  return s
}

interface Exp { id: string; kind: string; workerId: string; contributorId: string; parentCommit: string; commit: string; status: string; decision: string; agentNotes: string; unitId: string; valBpb: number | null }
const EXP = `select id, kind, worker_id as workerId, contributor_id as contributorId, parent_commit as parentCommit, "commit", status, decision,
  agent_notes as agentNotes, unit_id as unitId, val_bpb as valBpb from experiments`

/** The workers whose verification runs of an experiment are in. */
const verifiersOf = (s: Scenario, experimentId: string) => s.sql<{ workerId: string }>(`select e.worker_id as workerId from work_units u
  join experiments e on e.unit_id = u.id where u.kind = 'verify' and u.target_experiment = ? and e.status = 'measured'`, experimentId).map(r => r.workerId)

t.test('two workers improve the same parent: both land on the branch, through a three-way merge or through a rebase unit, each verified by the other worker', async t => {
  // Phase 0 changes different places (a clean three-way merge); phase 1, on the best phase 0 left,
  // overlapping lines (a conflict, so a rebase unit). One coordinator and two workers for both.
  const [a0, b0] = commentRuns(2, 2)
  const A0 = a0.slice(0, 2)
  const B0 = b0.slice(0, 2)
  const [run] = commentRuns(1, 3, [A0, B0])
  const A1 = run.slice(0, 2)
  const B1 = run.slice(1, 3)
  const s = await scenario(t, { plans: [[A0, A1], [B0, B1]] })
  const merges = () => s.sql<{ n: number }>('select count(*) as n from merges')[0].n
  /** The two candidates of a phase: the scripted edits trained on `parent`. */
  const candidates = (parent?: string) => s.sql<Exp>(EXP).filter(e => e.kind === 'explore' && e.valBpb !== null && e.status !== 'discarded' && (!parent || e.parentCommit === parent))

  await t.test('different places: one merges, the other is merged onto it by a three-way merge, verified by the other worker', async t => {
    await s.until('two merges', () => merges() >= 2)
    const exps = s.sql<Exp>(EXP)
    const edits = candidates()
    t.equal(edits.length, 2, `both edits were trained as candidates (${edits.map(e => `${e.id} ${e.status}`).join(', ')})`)
    t.equal(new Set(edits.map(e => e.parentCommit)).size, 1, 'on the same parent')
    t.equal(new Set(edits.map(e => e.workerId)).size, 2, 'by the two workers')
    const kept = edits.find(e => e.status === 'kept')!
    const stale = edits.find(e => e.status === 'stale')!
    t.ok(kept && stale, 'one merged directly, the other found the best moved on')
    if (!kept || !stale) return
    t.same(verifiersOf(s, kept.id), [stale.workerId], 'the directly merged one was verified by the other worker')

    const merged = exps.find(e => e.kind === 'rebase' && e.agentNotes === `three-way merge of ${stale.id}`)
    t.ok(merged, 'the stale one was merged onto the new best by a three-way merge')
    if (!merged) return
    t.equal(merged.status, 'kept', 'and that merge was kept')
    t.equal(merged.parentCommit, s.sql<{ after: string }>('select best_after as after from merges where experiment_id = ?', kept.id)[0].after, 'on top of the first merge')
    t.same(verifiersOf(s, merged.id), [kept.workerId], 'the merged code was verified by the OTHER worker (not the one whose idea it is)')
    const parents = (await execa('git', ['rev-list', '--parents', '-n', '1', merged.commit], { cwd: join(s.data, 'git') })).stdout.trim().split(' ').slice(1)
    t.same(parents, [merged.parentCommit, stale.commit], 'the three-way merge commit has the best and the candidate as parents')

    // What a maintainer sees: `git clone http://HOST:PORT/git/<campaign>`.
    const clone = join(s.dir, 'clone')
    await execa('git', ['clone', '-q', `${s.coord.url}/git/demo`, clone])
    const log = (await execa('git', ['log', '--format=%an <%ae>%x00%B%x01', 'HEAD'], { cwd: clone })).stdout.split('\x01').map(x => x.trim()).filter(Boolean)
    t.equal(log.length, 3, 'the branch: the seed and the two merges')
    const authors = log.slice(0, 2).map(c => c.split('\0')[0])
    t.same(authors.sort(), ['alice <alice@example.org>', 'bob <bob@example.org>'], 'authored by the two contributors')
    for (const c of log.slice(0, 2)) t.match(c.split('\0')[1], /val_bpb: \d+\.\d{6}\ndelta: [-\d.]+\nsigma: [\d.]+\nn: \d+ \(parent \d+\)\nverifiers: w-(alice|bob)/, 'the message carries the metrics trailer')
    const tip = readFileSync(join(clone, 'train.py'), 'utf8').split('\n')
    t.ok([...A0, ...B0].every(l => !tip.includes(l)), "the branch's train.py has both deletions")
    t.equal(tip.length, TRAIN_PY.split('\n').length - 4, '... and nothing else removed')
  })

  // A rebase of one worker's idea run by the other would have both contributors as authors (issue
  // 15: a carried claim's origin is no witness) and nobody left to verify it; the scheduler gives
  // it to the origin's worker (scheduler/next-unit.ts, step 3).
  await t.test('the same lines: the conflicting one gets a rebase unit, done by a real worker, verified by the other and merged', async t => {
    const best = s.sql<{ c: string }>("select best_commit as c from campaigns where name = 'demo'")[0].c
    await s.phase(1, best)
    await s.until('two more merges', () => merges() >= 4)
    const exps = s.sql<Exp>(EXP)
    const edits = candidates(best)
    const kept = edits.find(e => e.status === 'kept')
    const stale = edits.find(e => e.status === 'stale')
    t.ok(edits.length === 2 && kept && stale, `both edits on the phase-0 best; one merged directly, the other went stale (${edits.map(e => `${e.id} ${e.status}`).join(', ')})`)
    if (!kept || !stale) return
    t.notOk(exps.some(e => e.agentNotes === `three-way merge of ${stale.id}`), 'the coordinator could not merge it by itself')
    const units = s.sql<{ id: string; state: string; workerId: string | null }>(`select id, state, worker_id as workerId from work_units
      where kind = 'rebase' and target_experiment = ?`, stale.id)
    t.equal(units.length, 1, 'one rebase unit was queued for it')
    t.equal(units[0]?.state, 'done', 'it was leased and done')
    const rebase = exps.find(e => e.unitId === units[0]?.id)
    t.ok(rebase, 'by a real worker, which reported an experiment for it')
    if (!rebase) return
    t.equal(rebase.kind, 'rebase')
    t.ok(s.workers.some(w => w.log.includes(`${units[0].id} rebase on demo`)), 'the worker trained it')
    t.equal(rebase.status, 'kept', 'the rebased idea was merged')
    const verifiers = verifiersOf(s, rebase.id)
    t.ok(verifiers.length >= 1 && verifiers.every(w => w !== rebase.workerId), 'verified by the other worker')
    const tip = (await execa('git', ['show', 'autoresearch/demo:train.py'], { cwd: join(s.data, 'git') })).stdout.split('\n')
    t.ok([...A1, ...B1].every(l => !tip.includes(l)), 'the best has both ideas: all three lines are gone')
    const message = (await execa('git', ['log', '-1', '--format=%B', 'autoresearch/demo'], { cwd: join(s.data, 'git') })).stdout
    t.match(message, /^re-applied: dropped 1 line\(s\) the reference diff deletes\n\nval_bpb: /, 'the branch commit is the rebase, with its metrics trailer')
  })
})

t.test('a report whose answer was lost is answered duplicate when resent; a report after the lease ran out still counts; a known source is not trained again', async t => {
  // One worker that never edits (its agent answers "no change"), three baseline runs wanted: step 1
  // may see the worker train the second one while its first report waits out a retry back-off,
  // and step 2 needs one still to come. Single runs: a lone contributor's class gets no
  // exploration it would need another contributor to verify (issue 15), and step 3 needs one.
  const s = await scenario(t, { plans: [[]], names: ['carl'], noise: { baselineRuns: 3, replications: 0 } })
  const [carl] = s.workers
  const spool = join(carl.state, 'spool')
  interface Unit { id: string; kind: string; state: string; leaseToken: string; progress: string | null; workerId: string | null }
  const units = () => s.sql<Unit>('select id, kind, state, lease_token as leaseToken, progress, worker_id as workerId from work_units')
  const experimentsOf = (unitId: string) => s.sql<Exp>(`${EXP} where unit_id = ?`, unitId)
  const training = (kind: string, not: string[] = []) => s.until(`a ${kind} unit in training`, () =>
    units().find(u => u.kind === kind && u.state === 'leased' && u.progress !== null && !not.includes(u.id)))

  // 1. The answer is lost: the coordinator is frozen while the worker reports, the spooled report is
  //    copied (what a worker killed before it saw the answer keeps), then the worker restarts with it.
  const first = await training('baseline')
  s.coord.proc!.kill('SIGSTOP')
  const file = join(spool, `${first.id}.json`)
  let spooled = ''
  try {
    spooled = await s.until('the report in the spool', () => { try { return readFileSync(file, 'utf8') } catch { return '' } })
  } finally {
    s.coord.proc!.kill('SIGCONT')
  }
  // The worker logs the answer just after it empties the spool: wait for both.
  await s.until('the report stored, the spool emptied and the answer logged', () => experimentsOf(first.id).length === 1 &&
    (() => { try { readFileSync(file); return false } catch { return true } })() && new RegExp(`${first.id}: measured \\d`).test(carl.log))
  t.notMatch(carl.log, `${first.id}: could not deliver`, 'answered once')
  await carl.stop()
  // The coordinator comes back with short leases (budget 2 s + 8 s) for step 2.
  await s.coord.stop()
  s.coord.startArgs.splice(0, s.coord.startArgs.length, '--lease-margin', '8')
  await s.coord.start()
  await mkdir(spool, { recursive: true })
  await writeFile(file, spooled)
  await carl.start(s.coord.url)
  await s.until('the resent report answered', () => carl.log.includes(`${first.id}: measured`) && carl.log.match(new RegExp(`${first.id}: measured[^\\n]*\\(already recorded\\)`)))
  t.pass('the resent report was answered as already recorded (duplicate)')
  t.equal(experimentsOf(first.id).length, 1, 'one experiment for it')

  // 2. The worker is frozen mid-training past its lease (SIGSTOP), then thawed (SIGCONT): nobody else
  //    took the unit, so its late report counts.
  const second = await training('baseline', [first.id])
  carl.signal('SIGSTOP')
  const frozenAt = Date.now()
  await s.until('the lease to run out', () => units().find(u => u.id === second.id)?.state !== 'leased')
  const expiredMs = Date.now() - frozenAt
  await sleep(2000)
  carl.signal('SIGCONT')
  await s.until('the late report', () => experimentsOf(second.id).length > 0 || carl.log.includes(`${second.id}: the coordinator did not take`))
  const late = experimentsOf(second.id)
  t.equal(late.length, 1, `the late report was stored (lease ran out ${expiredMs} ms into the freeze)`) || t.comment(carl.log.slice(-3000))
  t.equal(late[0]?.status, 'measured', 'and counted as a measurement')
  t.equal(s.sql<{ n: number }>("select count(*) as n from events where type = 'lease-expired'")[0].n >= 1, true, 'the coordinator had logged the expired lease')

  // 3. DESIGN §8: an identical train.py is never trained twice on a class. The next unit is an
  //    explore whose agent changes nothing: its source is the parent's, which the baselines measured.
  const reused = await s.until('a reused explore', () => s.sql<Exp>(`${EXP} where kind = 'explore'`).find(e => /^not trained: identical to experiment/.test(e.decision)))
  t.equal(reused.valBpb, null, 'no new number')
  const baselines = s.sql<Exp>(`${EXP} where kind = 'baseline'`).map(e => e.id)
  t.match(reused.decision, new RegExp(`identical to experiment (${baselines.join('|')})`), 'it names a baseline that measured this source')
  t.equal(s.sql<{ n: number }>('select count(*) as n from measurements where experiment_id = ?', reused.id)[0].n, 0, 'and adds no measurement')
  t.match(carl.log, new RegExp(`${reused.unitId}: not trained: identical to experiment`), 'the worker said so')
  t.notMatch(carl.log, new RegExp(`${reused.unitId}: step \\d`), 'and did not train it')
  const perUnit = s.sql<{ unitId: string; n: number }>('select unit_id as unitId, count(*) as n from experiments group by unit_id having n > 1')
  t.same(perUnit, [], 'one experiment per unit throughout')
})

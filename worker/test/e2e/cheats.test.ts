import t from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { execa } from 'execa'
import { createTRPCClient, httpLink } from '@trpc/client'
import type { AppRouter } from '@autoresearch-grid/coordinator'
import type { NoisePolicy } from '@autoresearch-grid/shared'
import { findPython } from '@autoresearch-grid/trainer'
import { sharedCorpus } from '../fixtures/corpus.ts'
import { openCoordinator } from '../../../coordinator/src/coordinator.ts'
import { createCampaign } from '../../../coordinator/src/campaigns/campaigns.ts'
import { createAdminToken, createWorkerToken } from '../../../coordinator/src/auth/access.ts'
import { CoordinatorProcess, readDb, ROOT } from '../../../coordinator/test/faults/coordinator-process.ts'
import { ScriptedWorker } from '../../../coordinator/test/faults/scripted-worker.ts'
import { cheats } from '../fixtures/cheats/variants.ts'
import { until as poll } from '../../../shared/test/support/until.ts'
import { workerCli } from '../../../shared/test/support/cli.ts'

// The issue's acceptance test (DESIGN §7, §11; docs/SECURITY.md "Trusted measurement"): a hostile
// contributor, mallory, submits six cheating variants of the real trainer, each with a forged,
// tempting claim (val_bpb 0.5, far below the parent), to a real coordinator (its CLI, a SQLite
// file, its git store, fastify on loopback). Three honest contributors run real `worker join`
// processes (sandboxed where bubblewrap exists) that verify her claims with the trusted
// measurement: training sees the training split only and is stopped by the worker's clock; the
// evaluator scores the saved weights in sandboxes that get inputs only and probe for look-ahead.
// None of the six may move the best, and a maintainer must be able to read why each did not count.
// mallory is a scripted protocol client (a real tRPC WebSocket client): a hostile worker can send
// any report, so her own "run" is just the forged report.
const TRAIN_PY = readFileSync(join(ROOT, 'trainer/train.py'), 'utf8')
const CHEATS = cheats(TRAIN_PY)
const BUDGET = 2
const CLAIM = 0.5
// The fewest runs that still need other contributors: one baseline, one verification (a claim above
// the cap always needs another contributor to reproduce it). minDelta is large so that the honest
// workers' own no-change explorations never merge by noise (that would move the best and send the
// cheats down the stale path); a claim of 0.5 clears it by far, so a cheat that fooled its verifier
// WOULD merge here.
// The fixed rule: one verification decides, which these scripts count on (the default, `parallel`,
// asks two other contributors and more runs).
const NOISE: Partial<NoisePolicy> = { policy: 'fixed', replications: 1, baselineRuns: 1, minDelta: 0.3, maxImprovement: 0.5, budgetTolerance: 0.9 }
const HONEST = ['alice', 'bob', 'carol']
const AGENT = join(ROOT, 'worker/test/fixtures/scripted-agent.mjs')

const python = await findPython()

class HonestWorker {
  proc: ChildProcess | null = null
  log = ''
  constructor(readonly name: string, readonly token: string, readonly state: string, readonly agents: string) {}

  /** `worker join` whose agent never edits (fixtures/scripted-agent.mjs with no plan): it baselines and verifies. */
  async start(url: string, corpus: string): Promise<void> {
    await mkdir(this.state, { recursive: true })
    await symlink(corpus, join(this.state, 'data')).catch(() => {})
    this.proc = spawn(process.execPath, [workerCli, 'join', url, '--token', this.token, '--name', this.name, '--state', this.state,
      '--no-pipeline', '--agent-cmd', `${process.execPath} ${AGENT}`], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, AUTORESEARCH_PYTHON: python.path, ARG_AGENT_NAME: this.name, ARG_AGENT_PLAN: '[]', ARG_AGENT_STATE: this.agents },
    })
    const keep = (b: Buffer) => { this.log = (this.log + b).slice(-20_000) }
    this.proc.stdout!.on('data', keep)
    this.proc.stderr!.on('data', keep)
  }

  async stop(): Promise<void> {
    const p = this.proc
    if (!p || p.exitCode !== null || p.signalCode !== null) return
    const gone = new Promise(r => p.once('exit', r))
    p.kill('SIGTERM')
    const timer = setTimeout(() => p.kill('SIGKILL'), 10_000)
    await gone
    clearTimeout(timer)
  }
}

t.test('six cheats with forged claims: none merges, each is rejected with a reason a maintainer can read', async t => {
  const started = Date.now()
  const dir = await mkdtemp(join(tmpdir(), 'arg-cheats-'))
  const data = join(dir, 'data')
  const corpus = (await sharedCorpus()).root // the suite's prepared corpus (fixtures/corpus.ts)

  // The maintainer's setup: a cpu-tiny campaign seeded from the real trainer, with no review gate
  // (the trusted measurement and the ratchet alone must stop every cheat), four contributors.
  const app = await openCoordinator(data)
  let tokens: Record<string, string>
  let admin: string
  try {
    await createCampaign(app, { name: 'demo', seed: { 'train.py': TRAIN_PY }, spec: { budgetSeconds: BUDGET, profile: 'cpu-tiny', vocabSize: 512, noise: NOISE, review: 'none' } })
    tokens = Object.fromEntries([...HONEST, 'mallory'].map(n => [n, createWorkerToken(app, n, `${n}@example.org`).token]))
    admin = createAdminToken(app)
  } finally {
    app.close()
  }
  const coord = new CoordinatorProcess(data, ['--lease-margin', '60'])
  await coord.start()
  await mkdir(join(dir, 'agents'))
  const honest = HONEST.map(n => new HonestWorker(`w-${n}`, tokens[n], join(dir, n), join(dir, 'agents')))
  let mallory: ScriptedWorker | null = null
  t.teardown(async () => {
    await mallory?.stop().catch(() => {})
    await Promise.all(honest.map(w => w.stop()))
    await coord.stop()
    if (t.passing()) await rm(dir, { recursive: true, force: true })
    else t.comment(`data dir kept for a look: ${dir}`)
  })
  // What a maintainer sees: the coordinator's API with the admin token (log tails included).
  const api = createTRPCClient<AppRouter>({ links: [httpLink({ url: `${coord.url}/trpc`, headers: () => ({ authorization: `Bearer ${admin}` }) })] })
  const experiments = () => api.dashboard.experiments.query({ campaign: 'demo', limit: 500 })
  /** No deadline of its own (shared/test/support/until.ts); a long wait prints the honest workers' logs. */
  const until = <T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false): Promise<T> =>
    poll(what, () => {
      // A worker that exited (it refuses to run, say) will not bring what is waited for: say so now.
      const gone = honest.find(w => w.proc && (w.proc.exitCode !== null || w.proc.signalCode !== null))
      if (gone) throw new Error(`${gone.name} exited while waiting for ${what}:\n${gone.log.slice(-3000)}`)
      return fn()
    }, { everyMs: 500, describe: () => honest.map(w => `${w.name}:\n${w.log.slice(-3000)}`).join('\n') })

  const seed = (await api.dashboard.campaign.query({ name: 'demo' }))!.bestCommit
  for (const w of honest) await w.start(coord.url, corpus)

  // mallory joins once an honest worker measured the seed: she must not be the one to baseline it.
  const baseline = await until('an honest baseline of the seed', async () => (await experiments()).find(e => e.kind === 'baseline' && e.status === 'measured'))
  t.ok(HONEST.includes(baseline.contributor ?? ''), `the seed was baselined by an honest worker: ${baseline.valBpb?.toFixed(4)}`)
  t.ok(baseline.valBpb! > CLAIM + NOISE.maxImprovement!, 'so a claim of 0.5 is above the improvement cap')

  let next = 0
  const m = new ScriptedWorker({
    url: coord.url, token: tokens.mallory, name: 'm-mallory', maxUnits: CHEATS.length, trainMs: () => 100,
    result: unit => {
      if (unit.kind !== 'explore' || next >= CHEATS.length) return { valBpb: null, description: `${unit.kind}: not run` }
      const cheat = CHEATS[next++]
      return { valBpb: CLAIM, source: { 'train.py': cheat.source }, description: `${cheat.description} [${cheat.name}]` }
    },
  })
  mallory = m
  await m.start()
  await until('mallory reported her six cheats', () => m.replies.length >= CHEATS.length && m.holding().length === 0)
  t.equal(next, CHEATS.length, 'every unit mallory got was an exploration, and each carried one cheat')
  t.same(m.refusals, [], 'the coordinator took all her reports')

  // Settled: each cheat is decided, or (a coordinator that does not re-decide a candidate after a
  // failed verification) it has verification runs in and none outstanding.
  const candidates = () => readDb(data, db => db.prepare(`select e.id, e.status, (select count(*) from work_units u where u.kind = 'verify'
    and u.target_experiment = e.id and u.state in ('queued', 'leased')) as open, (select count(*) from work_units u where u.kind = 'verify'
    and u.target_experiment = e.id and u.state = 'done') as done from experiments e where e.worker_id = ? and e.kind = 'explore'`).all(m.workerId)) as
    { id: string; status: string; open: number; done: number }[]
  await until('every cheat settled', () => {
    const cs = candidates()
    return cs.length === CHEATS.length && cs.every(c => !['pending', 'merging'].includes(c.status) || (c.open === 0 && c.done > 0))
  })
  await m.stop()
  mallory = null

  const all = await experiments()
  const campaign = (await api.dashboard.campaign.query({ name: 'demo' }))!
  t.equal(campaign.bestCommit, seed, "the campaign's best is still the seed")
  t.same(await api.dashboard.merges.query({ campaign: 'demo' }), [], 'no merge was recorded')
  const branch = (await execa('git', ['rev-list', 'autoresearch/demo'], { cwd: join(data, 'git') })).stdout.trim().split('\n')
  t.same(branch, [seed], 'the branch holds only the seed')

  for (const cheat of CHEATS) {
    await t.test(cheat.name, async t => {
      const candidate = all.find(e => e.kind === 'explore' && e.contributor === 'mallory' && e.description.endsWith(`[${cheat.name}]`))
      t.ok(candidate, 'the candidate is recorded')
      if (!candidate) return
      const detail = (await api.dashboard.experimentDetail.query({ id: candidate.id }))!
      t.equal(detail.valBpb, CLAIM, 'with its forged claim')
      t.equal(detail.hardwareClass, baseline.hardwareClass, 'on the honest workers\' class')
      t.notOk(branch.includes(candidate.commit), 'its commit is not on the branch')
      t.not(candidate.status, 'kept')
      t.not(candidate.status, 'merging')
      const verifications = await Promise.all(all.filter(e => e.kind === 'verify' && e.commit === candidate.commit)
        .map(async e => ({ ...e, ...(await api.dashboard.experiment.query({ id: e.id }))! })))
      t.ok(verifications.length >= 1, `verified by ${verifications.map(v => `${v.worker} (${v.contributor}): ${v.status} ${v.valBpb ?? ''}`).join(', ')}`)
      t.ok(verifications.every(v => HONEST.includes(v.contributor ?? '')), 'every verification by another (honest) contributor')
      const reasons = [detail.decision, ...verifications.flatMap(v => [v.decision, v.agentNotes])].join('\n')
      t.match(reasons, cheat.reason, `a maintainer can read why: ${cheat.reason}`)
      if (cheat.outcome === 'unreproduced') {
        t.equal(candidate.status, 'rejected', 'rejected')
        t.match(detail.decision, /not reproduced/, 'as a claim other contributors did not reproduce')
        t.ok(verifications.every(v => v.status === 'measured' && v.valBpb! > CLAIM + NOISE.maxImprovement!), 'whose honest numbers are far worse than the claim')
        t.ok(verifications.every(v => v.valBpb! > baseline.valBpb! - 0.1), 'and no better than the trained seed: nothing learned')
      } else {
        t.ok(verifications.every(v => v.valBpb === null && v.status !== 'measured'), 'no verification produced a number')
        // A candidate whose verifications crashed or were refused is re-decided, and rejected once
        // enough other contributors saw it fail (units/report.ts, units/judge.ts).
        t.ok(['rejected', 'discarded'].includes(candidate.status), `the candidate ends rejected (${candidate.status}: ${candidate.decision})`)
        t.match(candidate.decision, /crash|refused|reject/i, 'because its verifications failed')
        // The reason the trusted measurement gave goes with the report (Report.rejection); the
        // verification's own decision should say it, not only the worker's notes.
        if (cheat.verifierReports === 'rejected-measurement')
          t.ok(verifications.every(v => cheat.reason.test(v.decision)), `each verification's decision carries the rejection (${verifications.map(v => v.decision).join('; ')})`)
      }
      const why = reasons.split('\n').find(l => cheat.reason.test(l)) ?? ''
      t.comment(`RESULT ${cheat.name}: ${candidate.status} | ${candidate.decision.slice(0, 200)} | ${why.slice(0, 400)}`)
    })
  }
  t.comment(`RESULT cheats: ${CHEATS.length} cheats, 0 merged, ${Math.round((Date.now() - started) / 1000)}s`)
})

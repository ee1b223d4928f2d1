import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createCampaign } from '@autoresearch-grid/coordinator'
import { startCoordinator } from '../../../coordinator/test/helpers.ts'
import type { Agent, AgentTask } from '../../src/agent/agent.ts'
import { HeuristicAgent } from '../../src/agent/heuristic-agent.ts'
import { DepthGauge } from '../../src/loop/depth.ts'
import { DutyCycle } from '../../src/loop/duty-cycle.ts'
import { runPipeline } from '../../src/loop/pipeline.ts'
import { joinCoordinator, type JoinSummary } from '../../src/loop/join.ts'
import { sharedCorpus } from '../fixtures/corpus.ts'

// Pipelining: while the GPU trains unit N the agent prepares the next ones, as many at once as keep
// the GPU busy. The pipeline tests run on a virtual clock, so a loaded machine cannot reorder or
// stretch them; the last test runs the real join loop (DUTY_UNITS, DUTY_AGENT_SECONDS and
// DUTY_BUDGET scale it) and asserts what happened, not how fast: the duty cycle it reaches is
// measured by bench/duty-cycle/run.ts (docs/PERFORMANCE.md).
const trainerDir = fileURLToPath(new URL('../../../trainer/', import.meta.url))
const TRAIN = readFileSync(join(trainerDir, 'train.py'), 'utf8')
const sleep = (ms: number) => new Promise(r => setTimeout(r, ms))

/**
 * Virtual time for the pipeline simulations: `sleep` only registers a wake-up, and the clock jumps
 * to the next one once every task has run as far as it can (all of them wait on the clock). Runs
 * in no wall time, in the same order on an idle machine and a loaded one.
 */
class VirtualClock {
  now = 0
  private timers: { at: number; seq: number; wake: () => void }[] = []
  private seq = 0
  sleep = (ms: number): Promise<void> => new Promise(wake => { this.timers.push({ at: this.now + ms, seq: this.seq++, wake }) })

  async run<T>(work: Promise<T>): Promise<T> {
    let settled = false
    const watched = work.finally(() => { settled = true })
    watched.catch(() => {})
    for (;;) {
      await new Promise(r => setImmediate(r)) // every microtask chain has reached its next sleep
      if (settled) return watched
      this.timers.sort((a, b) => a.at - b.at || a.seq - b.seq)
      const next = this.timers.shift()
      if (!next) throw new Error('the simulation waits on something other than the virtual clock')
      this.now = next.at
      next.wake()
    }
  }
}

t.test('the duty cycle counts budgeted training seconds over the time work was in hand', async t => {
  let now = 0
  const d = new DutyCycle(() => now)
  t.equal(d.ratio(), undefined, 'nothing held yet')
  d.hold(1); now = 5000
  d.trained(3, 10)
  d.hold(-1); now = 60_000 // idle: no work to do is not the worker's loss
  d.hold(1); now = 63_000
  d.trained(12, 2) // past its budget: only the budget counts
  t.same(d.seconds(), { training: 5, held: 8 })
  t.equal(d.ratio(), 5 / 8)
})

t.test('with pipelining the next unit is prepared while the current one trains', async t => {
  const events: string[] = []
  const clock = new VirtualClock()
  const sleep = clock.sleep
  const run = (pipelined: boolean) => {
    let n = 0
    return clock.run(runPipeline<number, number>({
      depth: pipelined ? 2 : 1,
      next: async () => (n < 3 ? ++n : null),
      prepare: async u => { events.push(`prepare ${u} start`); await sleep(30); events.push(`prepare ${u} end`); return u },
      train: async u => { events.push(`train ${u} start`); await sleep(30); events.push(`train ${u} end`) },
      onError: (_, err) => { throw err },
    }))
  }
  await run(true)
  t.ok(events.indexOf('prepare 2 start') < events.indexOf('train 1 end'), 'unit 2 was prepared during unit 1\'s training')
  t.same(events.filter(e => e.startsWith('train')), ['train 1 start', 'train 1 end', 'train 2 start', 'train 2 end', 'train 3 start', 'train 3 end'], 'units train in order, one at a time')
  events.length = 0
  await run(false)
  t.ok(events.indexOf('prepare 2 start') > events.indexOf('train 1 end'), 'without pipelining, unit 2 waits for unit 1')
})

/**
 * A fake agent slower than a training run, and the real depth rule: the pipeline takes several
 * units in hand and prepares them side by side, so the trainer hardly waits; with a fixed spare it
 * waits for the agent every time. Milliseconds stand in for minutes.
 */
async function simulate(o: { agentMs: number; trainMs: number; units: number; cap: number }) {
  const clock = new VirtualClock()
  const sleep = clock.sleep
  const gauge = new DepthGauge({ cap: o.cap, budgetSeconds: () => o.trainMs / 1000, now: () => clock.now })
  let n = 0
  let preparing = 0
  let trained = 0
  /** Most proposals in flight at once once the agent was measured (the start holds the cap). */
  let mostPreparing = 0
  let trainingMs = 0
  let firstTrainStart = 0
  let lastTrainEnd = 0
  await clock.run(runPipeline<number, number>({
    depth: () => gauge.depth(),
    next: async () => (n < o.units ? ++n : null),
    prepare: async u => {
      gauge.agentStarted(String(u))
      preparing++
      if (trained >= 2) mostPreparing = Math.max(mostPreparing, preparing)
      await sleep(o.agentMs)
      preparing--
      gauge.agentEnded(String(u))
      return u
    },
    train: async () => {
      const start = clock.now
      firstTrainStart ||= start
      await sleep(o.trainMs)
      lastTrainEnd = clock.now
      trainingMs += lastTrainEnd - start
      trained++
      gauge.trained((lastTrainEnd - start) / 1000)
    },
    onError: (_, err) => { throw err },
  }))
  // From the first training on: the agent's first proposal cannot be hidden by anything.
  return { depth: gauge.depth(), mostPreparing, busy: trainingMs / (lastTrainEnd - firstTrainStart) }
}

t.test('with an agent slower than a training run, the depth grows and several proposals run at once', async t => {
  const adaptive = await simulate({ agentMs: 600, trainMs: 150, units: 10, cap: 4 })
  const fixed = await simulate({ agentMs: 600, trainMs: 150, units: 10, cap: 2 })
  t.comment(`trainer busy ${(adaptive.busy * 100).toFixed(0)}% adaptive (depth ${adaptive.depth}), ${(fixed.busy * 100).toFixed(0)}% with one spare`)
  t.ok(adaptive.depth >= 3, `depth ${adaptive.depth}: 1 + ceil(agent / training), at least 3 units in hand`)
  t.ok(adaptive.mostPreparing >= 3, `${adaptive.mostPreparing} proposals were prepared at once`)
  t.ok(fixed.mostPreparing <= 2, `with one spare, ${fixed.mostPreparing} at most (the spare, and the next unit while the trainer waits for it)`)
  t.ok(adaptive.busy > fixed.busy + 0.2, `the trainer is busier: ${adaptive.busy.toFixed(2)} vs ${fixed.busy.toFixed(2)}`)
})

t.test('with an agent faster than a training run, the depth settles at one spare', async t => {
  const r = await simulate({ agentMs: 20, trainMs: 150, units: 6, cap: 4 })
  t.equal(r.depth, 2)
})

t.test('the trainer takes the candidate ready first, not the unit that came first', async t => {
  const trained: number[] = []
  const clock = new VirtualClock()
  let n = 0
  await clock.run(runPipeline<number, number>({
    depth: 3,
    next: async () => (n < 3 ? ++n : null),
    prepare: async u => { await clock.sleep(u === 1 ? 200 : 20); return u },
    train: async u => { trained.push(u) },
    onError: (_, err) => { throw err },
  }))
  t.same(trained, [2, 3, 1])
})

/** The heuristic researcher, made as slow as a model that thinks for a while. */
class SlowAgent implements Agent {
  readonly label = 'heuristic (slowed)'
  private readonly inner = new HeuristicAgent()
  constructor(private readonly delayMs: number) {}
  begin(task: AgentTask) {
    const session = this.inner.begin(task)
    return { ...session, propose: async () => { await sleep(this.delayMs); return session.propose() } }
  }
}

t.test('with an agent slower than a training run, pipelining raises the GPU duty cycle', async t => {
  const units = Number(process.env.DUTY_UNITS ?? 2)
  const agentSeconds = Number(process.env.DUTY_AGENT_SECONDS ?? 5)
  const budget = Number(process.env.DUTY_BUDGET ?? 2)
  const dataRoot = (await sharedCorpus()).root // prepared once for the suite (fixtures/corpus.ts)
  const states = t.testdir({})
  const measure = async (pipeline: boolean): Promise<JoinSummary> => {
    const c = await startCoordinator()
    try {
      await createCampaign(c.app, { name: 'demo', seed: { 'train.py': TRAIN }, spec: { budgetSeconds: budget, profile: 'cpu-tiny', vocabSize: 512, noise: { policy: 'fixed', baselineRuns: 1, replications: 0 } } })
      return await joinCoordinator({
        url: c.url, token: c.workerToken(), name: `w-${pipeline}`, stateDir: join(states, `w-${pipeline}`), dataRoot, trainerDir,
        agent: new SlowAgent(agentSeconds * 1000), pipeline, maxUnits: units, log: process.env.DUTY_LOG ? l => t.comment(l) : () => {},
      })
    } finally {
      await c.close()
    }
  }
  const off = await measure(false)
  const on = await measure(true)
  const line = (s: JoinSummary) => `${((s.dutyCycle ?? 0) * 100).toFixed(1)}% (${s.trainingSeconds.toFixed(1)} s training in ${s.heldSeconds.toFixed(1)} s)`
  t.comment(`${units} units, budget ${budget} s, agent ${agentSeconds} s per proposal`)
  t.comment(`pipelining off: ${line(off)}`)
  t.comment(`pipelining on:  ${line(on)}`)
  t.equal(on.units, units)
  t.equal(off.units, units)
  t.ok(on.maxHeld > 2, `the coordinator sent ${on.maxHeld} units at once: more than one spare while the agent was not yet measured`)
  t.equal(off.maxHeld, 1, 'without pipelining, one unit at a time')
})

t.test('worker join with start-up beside evaluation (the GPU lane, forced on here): every unit is measured, in two run folders', async t => {
  const c = await startCoordinator()
  t.teardown(c.close)
  await createCampaign(c.app, { name: 'demo', seed: { 'train.py': TRAIN }, spec: { budgetSeconds: 2, profile: 'cpu-tiny', vocabSize: 512, noise: { policy: 'fixed', baselineRuns: 2, replications: 0 } } })
  const lines: string[] = []
  const stateDir = join(t.testdir({}), 'w')
  const summary = await joinCoordinator({
    url: c.url, token: c.workerToken(), name: 'w-overlap', stateDir, dataRoot: (await sharedCorpus()).root, trainerDir, agent: new HeuristicAgent(),
    overlapStartUp: true, maxUnits: 3, log: l => lines.push(l),
  })
  const log = lines.join('\n')
  t.equal(summary.units, 3, log.slice(-3000))
  t.match(log, /pipelined, up to \d units, next start-up beside evaluation/)
  t.equal(log.match(/: start-up [\d.]+s \(off the clock\), trained [\d.]+s, evaluated in [\d.]+s/g)?.length, 3, 'three runs, each with its start-up off the clock')
  t.notMatch(log, /attempt \d failed|started again/, 'none failed or had to start again')
  // A stale explore is merged onto the new best by the coordinator itself: that row has no number of its own, so only measured rows are counted.
  const measured = c.app.db.$client.prepare("select count(*) as n from experiments where status != 'crash' and val_bpb is not null").get() as { n: number }
  t.equal(measured.n, 3, 'three experiments measured and recorded')
})

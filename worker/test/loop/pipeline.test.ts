import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createCampaign } from '@autoresearch-grid/coordinator'
import { startCoordinator } from '../../../coordinator/test/helpers.ts'
import type { Agent, AgentTask } from '../../src/agent/agent.ts'
import { HeuristicAgent } from '../../src/agent/heuristic-agent.ts'
import { DutyCycle } from '../../src/loop/duty-cycle.ts'
import { runPipeline } from '../../src/loop/pipeline.ts'
import { joinCoordinator, type JoinSummary } from '../../src/loop/join.ts'

// Pipelining: while the GPU trains unit N the agent prepares unit N+1. The last test is also the
// benchmark behind docs/PERFORMANCE.md: DUTY_UNITS, DUTY_AGENT_SECONDS and DUTY_BUDGET scale it.
const trainerDir = fileURLToPath(new URL('../../../trainer/', import.meta.url))
const TRAIN = readFileSync(join(trainerDir, 'train.py'), 'utf8')
const sleep = (ms: number) => new Promise(r => setTimeout(r, ms))

t.test('the duty cycle counts training time over the time work was in hand', async t => {
  let now = 0
  const d = new DutyCycle(() => now)
  t.equal(d.ratio(), undefined, 'nothing held yet')
  d.hold(1); now = 1000
  d.training(true); now = 4000
  d.training(false); now = 5000
  d.hold(-1); now = 60_000 // idle: no work to do is not the worker's loss
  d.hold(1); now = 61_000
  d.training(true); now = 63_000
  t.same(d.seconds(), { training: 5, held: 8 })
  t.equal(d.ratio(), 5 / 8)
})

t.test('with pipelining the next unit is prepared while the current one trains', async t => {
  const events: string[] = []
  const run = (pipelined: boolean) => {
    let n = 0
    return runPipeline<number, number>({
      pipelined,
      next: async () => (n < 3 ? ++n : null),
      prepare: async u => { events.push(`prepare ${u} start`); await sleep(30); events.push(`prepare ${u} end`); return u },
      train: async u => { events.push(`train ${u} start`); await sleep(30); events.push(`train ${u} end`) },
      onError: (_, err) => { throw err },
    })
  }
  await run(true)
  t.ok(events.indexOf('prepare 2 start') < events.indexOf('train 1 end'), 'unit 2 was prepared during unit 1\'s training')
  t.same(events.filter(e => e.startsWith('train')), ['train 1 start', 'train 1 end', 'train 2 start', 'train 2 end', 'train 3 start', 'train 3 end'], 'units train in order, one at a time')
  events.length = 0
  await run(false)
  t.ok(events.indexOf('prepare 2 start') > events.indexOf('train 1 end'), 'without pipelining, unit 2 waits for unit 1')
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

t.test('with an agent slower than a training run, pipelining raises the GPU duty cycle', { timeout: 600_000 }, async t => {
  const units = Number(process.env.DUTY_UNITS ?? 2)
  const agentSeconds = Number(process.env.DUTY_AGENT_SECONDS ?? 5)
  const budget = Number(process.env.DUTY_BUDGET ?? 2)
  const dataRoot = join(t.testdir({}), 'data')
  const measure = async (pipeline: boolean): Promise<JoinSummary> => {
    const c = await startCoordinator()
    try {
      await createCampaign(c.app, { name: 'demo', seed: { 'train.py': TRAIN }, spec: { budgetSeconds: budget, profile: 'cpu-tiny', vocabSize: 512, noise: { baselineRuns: 1 } } })
      return await joinCoordinator({
        url: c.url, token: c.workerToken(), name: `w-${pipeline}`, stateDir: join(dataRoot, '..', `w-${pipeline}`), dataRoot, trainerDir,
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
  t.ok(on.dutyCycle! > off.dutyCycle! + 0.1, `duty cycle ${line(on)} with pipelining vs ${line(off)} without`)
})

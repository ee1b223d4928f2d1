import t from 'tap'
import { DepthGauge, pipelineDepth, type DepthInput } from '../../src/loop/depth.ts'

// The pipeline depth: enough units in hand that a candidate is ready whenever the trainer frees up.
const input = (over: Partial<DepthInput>): DepthInput => ({ agentSeconds: [], runningAgentSeconds: [], trainSeconds: [], budgetSeconds: 300, cap: 4, ...over })

t.test('an agent faster than a training run needs one spare unit', async t => {
  t.equal(pipelineDepth(input({ agentSeconds: [60, 90], trainSeconds: [320, 330] })), 2)
  t.equal(pipelineDepth(input({ agentSeconds: [0.1], trainSeconds: [8] })), 2, 'however fast the agent, the spare also hides the round trip to the coordinator')
})

t.test('an agent slower than a training run gets as many proposals in flight as it takes', async t => {
  // A unit fetched when a run ends trains after the depth - 1 already in hand: agent <= (depth - 1) * training.
  t.equal(pipelineDepth(input({ agentSeconds: [40], trainSeconds: [27] })), 3)
  t.equal(pipelineDepth(input({ agentSeconds: [54], trainSeconds: [27] })), 3, 'exactly two runs long')
  t.equal(pipelineDepth(input({ agentSeconds: [55], trainSeconds: [27] })), 4)
})

t.test('the slowest recent proposal counts, not the mean', async t => {
  t.equal(pipelineDepth(input({ agentSeconds: [20, 25, 58, 22], trainSeconds: [27] })), 4)
  t.equal(pipelineDepth(input({ agentSeconds: [58, 20, 20, 20, 20, 20, 20, 20, 20], trainSeconds: [27] })), 2, 'only the last 8 proposals: an old outlier is forgotten')
})

t.test('a proposal still running already says the agent is slow', async t => {
  t.equal(pipelineDepth(input({ agentSeconds: [10], runningAgentSeconds: [30], trainSeconds: [27] })), 3)
})

t.test('the typical training run is the median of recent runs, the budget before any was measured', async t => {
  t.equal(pipelineDepth(input({ agentSeconds: [40], trainSeconds: [27, 5, 28] })), 3, 'one short run (a crash) does not inflate the depth')
  t.equal(pipelineDepth(input({ agentSeconds: [40], budgetSeconds: 20 })), 3)
})

t.test('before the agent was measured at all, the worker holds the cap', async t => {
  t.equal(pipelineDepth(input({ trainSeconds: [27] })), 4)
  t.equal(pipelineDepth(input({ runningAgentSeconds: [1] })), 4, 'a first proposal still running does not count as measured')
})

t.test('the cap bounds the depth, and caps of 1 or 2 are fixed depths', async t => {
  t.equal(pipelineDepth(input({ agentSeconds: [600], trainSeconds: [27] })), 4)
  t.equal(pipelineDepth(input({ agentSeconds: [600], trainSeconds: [27], cap: 3 })), 3)
  t.equal(pipelineDepth(input({ agentSeconds: [600], trainSeconds: [27], cap: 2 })), 2, 'one fixed spare')
  t.equal(pipelineDepth(input({ cap: 1 })), 1, 'no pipelining')
  t.equal(pipelineDepth(input({ agentSeconds: [600], trainSeconds: [27], cap: 16 })), 4, 'never more than the coordinator allows')
})

t.test('the gauge times agent preparations and training runs', async t => {
  let now = 0
  const g = new DepthGauge({ cap: 4, budgetSeconds: () => 20, now: () => now })
  t.equal(g.depth(), 4, 'nothing measured: the cap')
  g.agentStarted('a'); g.agentStarted('b')
  now = 30_000
  g.agentEnded('a')
  t.equal(g.depth(), 3, '30 s agent against a 20 s budget')
  g.trained(40)
  now = 100_000
  t.equal(g.depth(), 4, 'b has been thinking for 100 s: 1 + ceil(100 / 40)')
  g.agentEnded('b', false)
  t.equal(g.depth(), 2, 'a failed preparation is no measurement, and no longer running')
  t.match(g.describe(), /slowest recent agent 30s, training 40s/)
})

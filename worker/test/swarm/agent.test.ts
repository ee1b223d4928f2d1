import t from 'tap'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { sourceHash, type SwarmExperiment, type SwarmView, type WorkUnit } from '@autoresearch-grid/shared'
import { ClaudeAgent } from '../../src/agent/claude.ts'
import { HeuristicAgent } from '../../src/agent/heuristic-agent.ts'
import type { AgentTask } from '../../src/agent/agent.ts'
import { withSwarm, type Claimed } from '../../src/agent/with-swarm.ts'
import { message, startMessagesServer, toolResults, toolUse, type MessagesRequest } from '../fixtures/messages-server.ts'

// Agents as members of the swarm: the real SDK against the local Messages-API server, the real
// heuristic; the coordinator's answers (search, claim) are plain functions here, the coordinator's
// side is tested in coordinator/test/swarm.
const TRAIN = readFileSync(fileURLToPath(new URL('../../../trainer/train.py', import.meta.url)), 'utf8')
const LR_LINE = /^MATRIX_LR = .*$/m.exec(TRAIN)![0]
const withLr = (v: string) => TRAIN.replace(LR_LINE, `MATRIX_LR = ${v}  # Muon, for the 2-D weights inside the blocks`)

function entry(over: Partial<SwarmExperiment>): SwarmExperiment {
  return { id: 'e1', parent: 'aaaaaaaaaa', onParent: true, description: 'MATRIX_LR 0.04 -> 0.06', status: 'discarded', verdict: 'discarded: no better than the best',
    valBpb: 2.51, delta: 0.004, notes: 'a higher lr did not help', agent: 'claude:claude-sonnet-5-5', changes: ['MATRIX_LR 0.04 -> 0.06'], sourceHash: sourceHash({ 'train.py': withLr('0.06') }), ...over }
}

function view(nearby: SwarmExperiment[]): SwarmView {
  return { best: { commit: 'aaaaaaaaaa', valBpb: 2.5 }, lineage: [{ commit: 'aaaaaaaaaa', description: 'WARMDOWN_FRAC 0.4 -> 0.5', valBpb: 2.5, delta: -0.02 }], nearby,
    open: [{ title: 'try a longer warm-down', priority: 3 }], exhausted: [{ title: 'raise the embedding lr', status: 'rejected' }], omitted: 0 }
}

function task(swarm: SwarmView, over: Partial<AgentTask> = {}): AgentTask {
  const unit: WorkUnit = {
    id: 'u-1', kind: 'explore', campaign: 'demo', profile: 'cpu-tiny', budgetSeconds: 3, leaseToken: 'l', leaseExpiresAt: 0, parentCommit: 'a'.repeat(40),
    source: { 'train.py': TRAIN }, editableFiles: ['train.py'], hypothesis: null, referenceDiff: null, triedOnParent: [], swarm,
    program: { version: 'b'.repeat(40), text: '# program\nThe campaign program: look at learning rates.' },
  }
  return { unit, files: { 'train.py': TRAIN }, program: '# the worker\'s own program.md', seed: 1, dir: '/nonexistent', ...over }
}

/** Claude proposes MATRIX_LR = `first`; after a refusal, `second`. */
function claudeProposing(first: string, second: string) {
  return [
    message([toolUse('replace_in_file', { path: 'train.py', old_string: LR_LINE, new_string: `MATRIX_LR = ${first}  # Muon, for the 2-D weights inside the blocks` }), toolUse('finish', { description: `MATRIX_LR 0.04 -> ${first}`, rationale: 'r' })]),
    (req: MessagesRequest) => {
      const refusal = toolResults(req).find(r => r.is_error)
      const current = `MATRIX_LR = ${first}  # Muon, for the 2-D weights inside the blocks`
      return message([{ type: 'text', text: `refused: ${refusal?.content.slice(0, 40)}` }, toolUse('replace_in_file', { path: 'train.py', old_string: current, new_string: `MATRIX_LR = ${second}  # Muon, for the 2-D weights inside the blocks` }),
        toolUse('finish', { description: `MATRIX_LR 0.04 -> ${second}`, rationale: 'r' })])
    },
  ]
}

t.test("Claude's first message and tools carry the swarm: the view, the campaign's program.md and a search it can use", async t => {
  const server = await startMessagesServer([
    message([toolUse('search_experiments', { constant: 'MATRIX_LR', status: 'discarded' })]),
    message([toolUse('replace_in_file', { path: 'train.py', old_string: LR_LINE, new_string: 'MATRIX_LR = 0.05' }), toolUse('finish', { description: 'MATRIX_LR 0.04 -> 0.05', rationale: 'r' })]),
  ])
  t.teardown(server.close)
  const searches: unknown[] = []
  const agent = withSwarm(new ClaudeAgent({ apiKey: 'sk-test', baseURL: server.url, retryBaseMs: 10 }), {
    log: () => {},
    search: async (_unit, q) => { searches.push(q); return [entry({ id: 'e-found', onParent: false, notes: 'found by search' })] },
  })
  const p = await agent.begin(task(view([entry({})]))).propose()
  t.equal(p.description, 'MATRIX_LR 0.04 -> 0.05')
  const [first, second] = server.requests
  const opening = String(first.messages[0].content)
  t.match(opening, /## The swarm's memory/)
  t.match(opening, /Current best: aaaaaaaaaa, val_bpb 2\.500000/)
  t.match(opening, /Already measured or being trained on this exact parent[^\n]*\n- e1 on aaaaaaaaaa: \[discarded\] MATRIX_LR 0\.04 -> 0\.06 \| val_bpb 2\.510000 Δ \+0\.0040 \| changes: MATRIX_LR 0\.04 -> 0\.06 \| by claude:claude-sonnet-5-5 \| verdict: discarded: no better than the best \| notes: a higher lr did not help/)
  t.match(opening, /Open hypotheses:\n- \(priority 3\) try a longer warm-down/)
  t.match(opening, /Hypotheses already tested, merged or rejected:\n- \[rejected\] raise the embedding lr/)
  t.match(JSON.stringify(first.system), /The campaign program: look at learning rates/, "the campaign's program.md, not the worker's")
  t.notMatch(JSON.stringify(first.system), /the worker's own program/)
  t.ok(first.tools!.some(x => x.name === 'search_experiments'), 'the search tool is offered')
  t.same(searches, [{ constant: 'MATRIX_LR', status: 'discarded', limit: 10 }], 'the search reached the coordinator with the model\'s query')
  t.match(toolResults(second)[0].content, /^- e-found on aaaaaaaaaa: \[discarded\].*notes: found by search/, 'its answer went back to the model')
})

t.test('Claude never hands in an edit the swarm view lists as measured on the same parent: it is sent back and a different one is handed in', async t => {
  const server = await startMessagesServer(claudeProposing('0.06', '0.03'))
  t.teardown(server.close)
  const lines: string[] = []
  const claims: string[] = []
  const agent = withSwarm(new ClaudeAgent({ apiKey: 'sk-test', baseURL: server.url, retryBaseMs: 10 }), {
    log: l => lines.push(l),
    claim: async (_u, c) => { claims.push(c.sourceHash); return { duplicateOf: null } },
  })
  const p = await agent.begin(task(view([entry({})]))).propose()
  t.equal(p.files['train.py'], withLr('0.03'), 'the proposal handed in is the second, new edit')
  t.not(sourceHash(p.files), entry({}).sourceHash)
  const refusal = toolResults(server.requests[1]).find(r => r.is_error)!
  t.match(refusal.content, /This exact code was already measured \(discarded, val_bpb 2\.510000\) on the same parent, as experiment e1/, 'the model is told why')
  t.same(claims, [sourceHash({ 'train.py': withLr('0.03') })], 'only the new edit is claimed at the coordinator')
  t.match(lines.join('\n'), /"MATRIX_LR 0\.04 -> 0\.06" was already measured .* asking claude:/)
})

t.test('an edit another worker is training right now (the coordinator refuses the claim) is sent back too', async t => {
  const server = await startMessagesServer(claudeProposing('0.07', '0.02'))
  t.teardown(server.close)
  const seven = sourceHash({ 'train.py': withLr('0.07') })
  const agent = withSwarm(new ClaudeAgent({ apiKey: 'sk-test', baseURL: server.url, retryBaseMs: 10 }), {
    log: () => {},
    claim: async (_u, c): Promise<Claimed> => ({ duplicateOf: c.sourceHash === seven ? { id: 'u-other', description: 'MATRIX_LR 0.04 -> 0.07', status: 'in-flight', valBpb: null } : null }),
  })
  const p = await agent.begin(task(view([]))).propose()
  t.equal(p.files['train.py'], withLr('0.02'))
  t.match(toolResults(server.requests[1]).find(r => r.is_error)!.content, /is being trained right now by another worker on the same parent, as experiment u-other/)
})

t.test('the heuristic researcher skips what the swarm view lists on the parent, in flight or measured', async t => {
  const hypothesis = { id: 'h', title: 'raise the Muon learning rate', body: '' }
  const plain = await new HeuristicAgent().begin({ ...task(view([])), unit: { ...task(view([])).unit, hypothesis } }).propose()
  t.match(plain.description, /^MATRIX_LR 0\.04 -> 0\.06/, 'without the view it would pick the hypothesis\' edit')
  const busy = view([entry({ status: 'in-flight', description: 'raise the lr a bit', changes: ['MATRIX_LR 0.04 -> 0.06'] })])
  const p = await new HeuristicAgent().begin({ ...task(busy), unit: { ...task(busy).unit, hypothesis } }).propose()
  t.notMatch(p.description, /MATRIX_LR 0\.04 -> 0\.06/, 'with it, another edit')
  const elsewhere = view([entry({ onParent: false })])
  const q = await new HeuristicAgent().begin({ ...task(elsewhere), unit: { ...task(elsewhere).unit, hypothesis } }).propose()
  t.match(q.description, /^MATRIX_LR 0\.04 -> 0\.06/, 'the same edit on another parent does not count')
})

t.test('a duplicate the agent keeps proposing is taken after a few redraws, and an unreachable coordinator does not stop the experiment', async t => {
  const stubborn = { label: 'stubborn', begin: () => ({ propose: async () => ({ files: { 'train.py': withLr('0.06') }, description: 'same again', rationale: '', followUps: [] }),
    repair: async () => ({ files: { 'train.py': withLr('0.06') }, description: 'same again', rationale: '', followUps: [] }), usage: () => ({ agent: 'stubborn', requests: 0, inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0, costUsd: null, attempts: 1 }) }) }
  const lines: string[] = []
  const p = await withSwarm(stubborn, { log: l => lines.push(l), maxRedraws: 2 }).begin(task(view([entry({})]))).propose()
  t.equal(p.description, 'same again')
  t.match(lines.at(-1), /keeps choosing candidates the swarm already has/)
  const offline = await withSwarm(new HeuristicAgent(), { log: l => lines.push(l), claim: async () => { throw new Error('socket closed') } }).begin(task(view([]))).propose()
  t.ok(offline.description, 'a proposal despite the failed claim')
  t.match(lines.at(-1), /could not claim the candidate \(socket closed\); going on/)
})

import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { WorkUnit } from '@autoresearch-grid/shared'
import { findPython } from '@autoresearch-grid/trainer'
import { ClaudeAgent, claudeFromEnv } from '../../src/agent/claude.ts'
import { AgentError } from '../../src/agent/agent.ts'
import { prepareExperiment, trainExperiment, type ExperimentContext } from '../../src/loop/experiment.ts'
import { openWorkspace } from '../../src/workspace/git.ts'
import { sharedCorpus } from '../fixtures/corpus.ts'
import { apiError, message, startMessagesServer, toolResults, toolUse, type Step } from '../fixtures/messages-server.ts'

// The real Anthropic SDK, pointed at a loopback server that speaks the Messages API with scripted
// replies; the real trainer on CPU for the runs.
const trainerDir = fileURLToPath(new URL('../../../trainer/', import.meta.url))
const TRAIN = readFileSync(join(trainerDir, 'train.py'), 'utf8')
const python = (await findPython()).path
const LR_LINE = /^MATRIX_LR = .*$/m.exec(TRAIN)![0]
/** train.py's line number of LR_LINE: the agent views the lines around it. */
const LR_LINE_NO = TRAIN.split('\n').indexOf(LR_LINE) + 1

function unit(over: Partial<WorkUnit> = {}): WorkUnit {
  return {
    id: `u-${Math.random().toString(36).slice(2, 8)}`, kind: 'explore', campaign: 'demo', profile: 'cpu-tiny', budgetSeconds: 3,
    leaseToken: 'lease', leaseExpiresAt: 0, parentCommit: 'a'.repeat(40), source: { 'train.py': TRAIN }, editableFiles: ['train.py'],
    hypothesis: { id: 'h1', title: 'raise the Muon learning rate', body: '' }, referenceDiff: null, triedOnParent: ['MATRIX_LR 0.04 -> 0.02'],
    ...over,
  }
}

async function setup(script: Step[]) {
  const server = await startMessagesServer(script)
  t.teardown(server.close)
  const agent = new ClaudeAgent({ apiKey: 'sk-test', model: 'claude-sonnet-5-5', baseURL: server.url, retryBaseMs: 10 })
  return { server, agent }
}

function context(dir: string, agent: ClaudeAgent, lines: string[] = []): ExperimentContext {
  return { agent, python, trainerDir, program: '# program\nLower val_bpb.', sandbox: null, runDir: join(dir, 'run'), log: l => lines.push(l) }
}

// The data set every worker test that trains shares, prepared once (fixtures/corpus.ts).
const prepared = sharedCorpus

t.test('the agent edits train.py through tools and the loop trains the edit', async t => {
  const dir = t.testdir({})
  const { server, agent } = await setup([
    message([{ type: 'text', text: 'Looking at the learning rates.' }, toolUse('view_file', { path: 'train.py', start_line: LR_LINE_NO - 5, end_line: LR_LINE_NO + 5 })]),
    message([toolUse('replace_in_file', { path: 'train.py', old_string: LR_LINE, new_string: 'MATRIX_LR = 0.06  # Muon, raised' })]),
    message([toolUse('finish', { description: 'MATRIX_LR 0.04 -> 0.06', rationale: 'tiny models tolerate a higher Muon lr', follow_ups: [{ title: 'try MATRIX_LR 0.08', body: 'if 0.06 helps' }] })], { input_tokens: 2000, output_tokens: 50 }),
  ])
  const ctx = context(dir, agent)
  const p = await prepareExperiment(ctx, unit(), await openWorkspace(join(dir, 'ws')))
  const report = await trainExperiment(ctx, p, await prepared())

  t.equal(report!.status, 'ok', report!.agentNotes)
  t.ok(report!.metrics!.val_bpb > 0, `val_bpb ${report!.metrics?.val_bpb}`)
  t.match(report!.source['train.py'], /^MATRIX_LR = 0\.06 {2}# Muon, raised$/m, 'the trained source is the edit')
  t.match(report!.diff, /^\+MATRIX_LR = 0\.06/m)
  t.equal(report!.description, 'MATRIX_LR 0.04 -> 0.06')
  t.same(report!.followUps, [{ title: 'try MATRIX_LR 0.08', body: 'if 0.06 helps' }])
  t.match(report!.agentUsage, { agent: 'claude:claude-sonnet-5-5', requests: 3, inputTokens: 4000, outputTokens: 250, attempts: 1 })
  t.equal(report!.agentUsage!.costUsd, (4000 * 3 + 250 * 15) / 1e6, 'cost at Sonnet list prices')

  const first = server.requests[0]
  t.match(JSON.stringify(first.system), /Lower val_bpb/, 'program.md is in the system prompt')
  t.match(first.messages[0].content as string, /raise the Muon learning rate/, 'the hypothesis is in the first message')
  t.match(first.messages[0].content as string, /MATRIX_LR 0\.04 -> 0\.02/, 'so is what was already tried')
  t.same(first.tools!.map(x => x.name), ['view_file', 'replace_in_file', 'write_file', 'finish'])
  t.match(toolResults(server.requests[1])[0].content, /MATRIX_LR = 0\.04/, 'view_file showed the lines asked for')
})

t.test('a crash goes back to the agent with the log tail, and the repaired candidate trains', async t => {
  const dir = t.testdir({})
  let crashLog = ''
  const { agent } = await setup([
    message([toolUse('replace_in_file', { path: 'train.py', old_string: LR_LINE, new_string: `${LR_LINE}\nraise RuntimeError("boom: shapes do not match")` })]),
    message([toolUse('finish', { description: 'a broken edit', rationale: 'oops' })]),
    req => {
      const r = toolResults(req)
      crashLog = r.find(x => x.is_error)?.content ?? ''
      return message([toolUse('replace_in_file', { path: 'train.py', old_string: '\nraise RuntimeError("boom: shapes do not match")', new_string: '' })])
    },
    message([toolUse('finish', { description: 'MATRIX_LR unchanged, crash fixed', rationale: 'removed the raise' })]),
  ])
  const lines: string[] = []
  const ctx = context(dir, agent, lines)
  const p = await prepareExperiment(ctx, unit(), await openWorkspace(join(dir, 'ws')))
  const report = await trainExperiment(ctx, p, await prepared())

  t.match(crashLog, /RuntimeError: boom: shapes do not match/, 'the repair turn carried the error from the log')
  t.match(crashLog, /exited with code 1/)
  t.equal(report!.status, 'ok', report!.agentNotes)
  t.equal(report!.description, 'MATRIX_LR unchanged, crash fixed')
  t.equal(report!.agentUsage!.attempts, 2)
  t.match(report!.agentNotes, /attempt 1 failed/)
})

t.test('after three failed attempts the unit is reported as a crash with its log tail', async t => {
  const dir = t.testdir({})
  const broken = (n: number) => message([toolUse('write_file', { path: 'train.py', content: `raise SystemExit("broken ${n}")\n` })])
  const finish = (n: number) => message([toolUse('finish', { description: `attempt ${n}`, rationale: '' })])
  const { server, agent } = await setup([broken(1), finish(1), broken(2), finish(2), broken(3), finish(3)])
  const ctx = context(dir, agent)
  const p = await prepareExperiment(ctx, unit(), await openWorkspace(join(dir, 'ws')))
  const report = await trainExperiment(ctx, p, await prepared())
  t.equal(report!.status, 'crash')
  t.equal(report!.agentUsage!.attempts, 3)
  t.match(report!.logTail, /broken 3/)
  t.equal(server.remaining(), 0, 'no fourth attempt was asked for')
})

t.test('a 429 is retried and the next reply is used', async t => {
  const { server } = await setup([
    apiError(429, 'rate_limit_error', 'slow down', { 'retry-after-ms': '20' }),
    message([toolUse('finish', { description: 'no change', rationale: 'just checking' })]),
  ])
  // Configured the way a user does it: only the environment.
  const agent = claudeFromEnv({ ANTHROPIC_API_KEY: 'sk-test', ANTHROPIC_BASE_URL: server.url, ANTHROPIC_MODEL: 'claude-haiku-4-5' })!
  const proposal = await agent.begin({ unit: unit(), files: { 'train.py': TRAIN }, program: '', seed: 1, dir: '/nonexistent' }).propose()
  t.equal(proposal.description, 'no change')
  t.equal(server.requests.length, 2, 'the SDK sent the request again')
  t.equal(server.requests[1].model, 'claude-haiku-4-5')
})

t.test('overload that outlasts the SDK retries gets further rounds with backoff', async t => {
  const overloaded = apiError(529, 'overloaded_error', 'Overloaded', { 'retry-after-ms': '1' })
  const { server } = await setup([overloaded, overloaded, message([toolUse('finish', { description: 'made it', rationale: '' })])])
  const agent = new ClaudeAgent({ apiKey: 'sk-test', baseURL: server.url, maxRetries: 0, retryRounds: 3, retryBaseMs: 5 })
  const lines: string[] = []
  const proposal = await agent.begin({ unit: unit(), files: { 'train.py': TRAIN }, program: '', seed: 1, dir: '/nonexistent', log: l => lines.push(l) }).propose()
  t.equal(proposal.description, 'made it')
  t.equal(lines.filter(l => /retrying in/.test(l)).length, 2)
})

t.test('a tool call aimed at prepare.py (or any other path) is refused', async t => {
  const { server, agent } = await setup([
    message([toolUse('view_file', { path: 'prepare.py' }), toolUse('write_file', { path: '../trainer/prepare.py', content: 'x = 1' })]),
    message([toolUse('replace_in_file', { path: '/etc/passwd', old_string: 'root', new_string: 'toor' })]),
    message([toolUse('finish', { description: 'gave up on prepare.py', rationale: 'locked' })]),
  ])
  const proposal = await agent.begin({ unit: unit(), files: { 'train.py': TRAIN }, program: '', seed: 1, dir: '/nonexistent' }).propose()
  const refusals = [...toolResults(server.requests[1]), ...toolResults(server.requests[2])]
  t.equal(refusals.length, 3)
  for (const r of refusals) {
    t.equal(r.is_error, true)
    t.match(r.content, /refused: .* is not an editable file/)
  }
  t.same(Object.keys(proposal.files), ['train.py'], 'only train.py comes back')
  t.equal(proposal.files['train.py'], TRAIN, 'unchanged')
})

t.test('an error retrying cannot fix says what to do', async t => {
  const { agent } = await setup([apiError(404, 'not_found_error', 'model: claude-nope')])
  await t.rejects(agent.begin({ unit: unit(), files: { 'train.py': TRAIN }, program: '', seed: 1, dir: '/nonexistent' }).propose(), new AgentError('model "claude-sonnet-5-5" not found (404): set ANTHROPIC_MODEL to a current Claude model id'))
})

t.test('when Claude cannot be reached, the heuristic researcher takes the unit', async t => {
  const dir = t.testdir({})
  const { agent } = await setup([apiError(401, 'authentication_error', 'invalid x-api-key')])
  const lines: string[] = []
  const p = await prepareExperiment(context(dir, agent, lines), unit(), await openWorkspace(join(dir, 'ws')))
  t.match(p.agentLabel, /^heuristic \(fallback from claude:/)
  t.match(p.description, /^MATRIX_LR 0\.04 -> /)
  t.equal(p.verdict.ok, true)
  t.match(lines.join('\n'), /refused ANTHROPIC_API_KEY/)
})

import t from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { execa } from 'execa'
import type { AssignmentEvent, WorkUnit } from '@autoresearch-grid/shared'
import { readDb } from '../faults/coordinator-process.ts'
import { CPU, report, wsClient } from '../helpers.ts'
import { approve, MODEL } from './setup.ts'
import { startMessagesServer } from '../../../worker/test/fixtures/messages-server.ts'
import { coordinatorCli as CLI } from '../../../shared/test/support/cli.ts'

// The review gate through the real CLI: `campaign create --review`, `campaign review`, and
// `coordinator start` reading ANTHROPIC_API_KEY / ANTHROPIC_BASE_URL, warning when it has none.
const env = (extra: Record<string, string>) => {
  const { ANTHROPIC_API_KEY: _k, ANTHROPIC_BASE_URL: _u, ANTHROPIC_MODEL: _m, REVIEW_MODEL: _r, ...rest } = process.env
  return { ...rest, LOG_LEVEL: 'error', ...extra }
}
const cli = (data: string, args: string[], extra: Record<string, string> = {}) =>
  execa(process.execPath, [CLI, '--data', data, ...args], { env: env(extra), extendEnv: false, reject: false })

/** `coordinator start` on a free port; resolves with its URL and everything it printed until it listened. */
async function start(data: string, extra: Record<string, string>): Promise<{ url: string; output: () => string; proc: ChildProcess }> {
  const proc = spawn(process.execPath, [CLI, '--data', data, 'start', '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'], env: env(extra) })
  let output = ''
  proc.stdout!.on('data', b => { output += b })
  proc.stderr!.on('data', b => { output += b })
  const url = await new Promise<string>((resolve, reject) => {
    const check = () => {
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(output)
      // The review lines come right after "listening": wait for the last line `start` prints.
      if (m && /admin token: /.test(output) && /review agent: /.test(output)) resolve(m[1])
    }
    proc.stdout!.on('data', check)
    proc.stderr!.on('data', check)
    proc.once('exit', code => reject(new Error(`coordinator exited with ${code}: ${output}`)))
  })
  return { url, output: () => output, proc }
}

async function stop(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return
  // 'close', not 'exit': the output is read to its end (a line written just before the exit can come after it).
  const gone = new Promise<void>(resolve => proc.once('close', () => resolve()))
  proc.kill('SIGTERM')
  await gone
}

t.test('campaign create --review, the start-up warning without a key, and an agent review through the real CLI', async t => {
  const dir = await mkdtemp(join(tmpdir(), 'arg-review-cli-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const data = join(dir, 'data')

  const created = await cli(data, ['campaign', 'create', 'demo', '--profile', 'cpu-tiny', '--no-prepare', '--budget', '10',
    '--baseline-runs', '1', '--replications', '0', '--review', 'agent+maintainer', '--policy', 'fixed'])
  t.equal(created.exitCode, 0, created.stderr)
  t.match(created.stdout, 'review before merge: agent+maintainer')
  t.match(created.stdout, 'ratchet policy: fixed', 'the policy is said (fixed: one worker, a single run decides)')
  const bad = await cli(data, ['campaign', 'review', 'demo', 'sometimes'])
  t.not(bad.exitCode, 0)
  t.match(bad.stderr, /expected one of agent, maintainer, agent\+maintainer, none/)

  const keyless = await start(data, {})
  await stop(keyless.proc)
  t.match(keyless.output(), 'review agent: none (no ANTHROPIC_API_KEY)')
  t.match(keyless.output(), 'warning: campaign demo: review asks for an agent, but the coordinator has no ANTHROPIC_API_KEY: only the maintainer reviews candidates')
  t.same(readDb(data, db => db.prepare("select json_extract(payload, '$.mode') as mode from events where type = 'review-fallback'").all()), [{ mode: 'maintainer' }],
    'the fallback is in the audit log')

  t.equal((await cli(data, ['campaign', 'review', 'demo', 'agent'])).exitCode, 0)
  t.match((await cli(data, ['campaign', 'list'])).stdout, /^demo\t.*\treview agent\t/m)
  const token = (await cli(data, ['token', 'create', 'alice'])).stdout.trim()

  const api = await startMessagesServer([approve('an honest learning-rate change')])
  t.teardown(api.close)
  const keyed = await start(data, { ANTHROPIC_API_KEY: 'sk-test', ANTHROPIC_BASE_URL: api.url, REVIEW_MODEL: MODEL })
  t.teardown(() => stop(keyed.proc))
  t.match(keyed.output(), `review agent: ${MODEL} at ${api.url}`)
  t.notMatch(keyed.output(), /warning: campaign demo/)

  const w = wsClient(keyed.url, token)
  t.teardown(w.close)
  const { workerId } = await w.api.worker.hello.mutate({ name: 'gpu0', hardware: CPU, fingerprints: {}, version: 't' })
  const units: WorkUnit[] = []
  let wake: (() => void) | null = null
  const sub = w.api.worker.assignments.subscribe({ workerId }, { onData: (e: AssignmentEvent) => { if (e.type === 'unit') { units.push(e.unit); wake?.() } } })
  t.teardown(() => sub.unsubscribe())
  const next = async () => {
    while (!units.length) await new Promise<void>(r => { wake = r })
    return units.shift()!
  }
  const base = await next()
  await w.api.worker.report.mutate({ workerId, report: report(base, 3.0) })
  const unit = await next()
  t.equal(unit.kind, 'explore')
  const edited = unit.source['train.py'].replace(/^MATRIX_LR = [0-9.]+/m, 'MATRIX_LR = 0.05')
  t.not(edited, unit.source['train.py'], 'the seed has a MATRIX_LR line to edit')
  const r = await w.api.worker.report.mutate({ workerId, report: report(unit, 2.9, edited) })
  t.match(r.decision, /^awaiting review \(agent\)/)
  for (let i = 0; i < 1200; i++) {
    if (readDb(data, db => (db.prepare('select count(*) as n from merges').get() as { n: number }).n)) break
    await new Promise(res => setTimeout(res, 50))
  }
  t.match(readDb(data, db => db.prepare('select reviewer, review_reason as reason from merges').all()), [{ reviewer: `${MODEL} (agent)`, reason: 'an honest learning-rate change | only DEPTH changes' }])
  t.equal(api.requests.length, 1)
  t.equal(await readFile(join(data, 'admin.token'), 'utf8').then(s => s.length > 0), true)
})

t.test('campaign create --policy: the ratchet policy goes into the spec, is listed, and a misspelt one is refused with the choices', async t => {
  const dir = await mkdtemp(join(tmpdir(), 'arg-policy-cli-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const data = join(dir, 'data')
  const base = ['--profile', 'cpu-tiny', '--no-prepare', '--budget', '10', '--review', 'none']

  const made = await cli(data, ['campaign', 'create', 'many', ...base, '--policy', 'sequential'])
  t.equal(made.exitCode, 0, made.stderr)
  t.match(made.stdout, 'ratchet policy: sequential')
  const dflt = await cli(data, ['campaign', 'create', 'plain', ...base])
  t.match(dflt.stdout, 'ratchet policy: parallel', 'without --policy: the default')
  t.same(readDb(data, db => db.prepare("select name, json_extract(spec, '$.noise.policy') as policy from campaigns order by name").all()),
    [{ name: 'many', policy: 'sequential' }, { name: 'plain', policy: 'parallel' }])
  t.match((await cli(data, ['campaign', 'list'])).stdout, /^many\t.*\tpolicy sequential\t/m)

  const bad = await cli(data, ['campaign', 'create', 'wrong', ...base, '--policy', 'paralel'])
  t.not(bad.exitCode, 0)
  t.match(bad.stderr, /--policy.*expected one of fixed, sequential, pooled, parallel/)
  t.same(readDb(data, db => db.prepare('select name from campaigns order by name').all()), [{ name: 'many' }, { name: 'plain' }], 'nothing else was created')
})

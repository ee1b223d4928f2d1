import t from 'tap'
import { execa, type ResultPromise } from 'execa'
import { existsSync } from 'node:fs'
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createRequire } from 'node:module'
import { createTRPCClient, httpLink } from '@trpc/client'
import type { AppRouter } from '@autoresearch-grid/coordinator'
import { findPython } from '@autoresearch-grid/trainer'
import { message, startMessagesServer, toolUse, type MessagesRequest } from '../fixtures/messages-server.ts'
import { writeTextCorpus } from '../fixtures/text-corpus.ts'
import { until } from '../../../shared/test/support/until.ts'
import { coordinatorCli, workerCli } from '../../../shared/test/support/cli.ts'

// A maintainer's real campaign, as issue 16 tried it: the data is a folder only the coordinator
// host has (deleted after `campaign create` prepared it), two `worker join`s with empty states
// download the prepared data set from the coordinator and train on it; one of them runs Claude
// (the real SDK against the local Messages-API server) and sees the maintainer's program.md change
// mid-campaign. A climbmix campaign served by a local shard server sits beside it: a worker that
// cannot prepare it (no pyarrow here) says why and what to do, and works on the other campaign.
const root = fileURLToPath(new URL('../../../', import.meta.url))
const MARK_1 = 'PROGRAM-ONE: study the learning rates.'
const MARK_2 = 'PROGRAM-TWO: the maintainer changed course; study the schedule.'


const text = (content: MessagesRequest['messages'][number]['content']) => (typeof content === 'string' ? content : JSON.stringify(content))
const systemOf = (r: MessagesRequest) => JSON.stringify(r.system ?? '')

/** Claude, scripted: each call changes MATRIX_LR to a value no call used before, then finishes. */
function claudeScript() {
  let n = 0
  return async (req: MessagesRequest) => {
    let line = /^MATRIX_LR = .*$/m.exec(text(req.messages[0].content))?.[0] ?? 'MATRIX_LR = 0.04'
    for (const m of req.messages) {
      if (m.role !== 'assistant' || !Array.isArray(m.content)) continue
      for (const b of m.content) if (b.type === 'tool_use' && b.name === 'replace_in_file') line = String((b.input as { new_string: string }).new_string)
    }
    const value = (0.05 + ++n * 0.003).toFixed(3)
    const next = line.replace(/=\s*[0-9.e-]+/, `= ${value}`)
    return message([toolUse('replace_in_file', { path: 'train.py', old_string: line, new_string: next }), toolUse('finish', { description: `MATRIX_LR -> ${value}`, rationale: 'scripted' })])
  }
}

t.test('a dir: campaign whose data only the coordinator has is served to two workers who train on it; program.md changes reach the agent; a climbmix campaign a worker cannot prepare is skipped with advice', async t => {
  const dir = await mkdtemp(join(tmpdir(), 'arg-campaign-data-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const data = join(dir, 'coordinator')
  const emails = join(dir, 'emails')
  await writeTextCorpus(emails)
  await writeFile(join(dir, 'program-1.md'), `# Research program\n\n${MARK_1}\n`)
  await writeFile(join(dir, 'program-2.md'), `# Research program\n\n${MARK_2}\n`)
  const python = (await findPython()).path
  const hasPyarrow = (await execa(python, ['-c', 'import pyarrow'], { reject: false })).exitCode === 0

  // The climbmix host: shards in the public layout on a loopback port.
  const shardDir = join(dir, 'shards')
  await execa(python, ['-c', `import sys; sys.path.insert(0, 'trainer/tests'); from shard_server import fake_shard; from pathlib import Path; d = Path(${JSON.stringify(shardDir)}); d.mkdir(); [(d / f'shard_{i:05d}.parquet').write_bytes(fake_shard(i)) for i in (0, 6542)]`], { cwd: root })
  const shards = execa(python, [join(root, 'trainer/tests/shard_server.py'), shardDir], { reject: false })
  t.teardown(() => { shards.kill('SIGKILL') })
  const shardUrl = await new Promise<string>(resolve => shards.stdout!.on('data', (b: Buffer) => { const m = /url: (\S+)/.exec(String(b)); if (m) resolve(m[1]) }))
  const env = { AUTORESEARCH_CLIMBMIX_URL: shardUrl }

  const cli = (...args: string[]) => execa(process.execPath, [coordinatorCli, '--data', data, ...args], { env, reject: false, all: true })
  // `fixed` with no replications: every candidate is decided on its own run. Under `parallel` the
  // test asks other contributors for runs whatever the replications say, and with two contributors
  // alice, the agent's worker, could spend the whole test verifying bob's candidates and never
  // explore (CI, session 16: it waited 30 minutes for her first Claude request).
  const created = await cli('campaign', 'create', 'mail', '--source', `dir:${emails}`, '--budget', '2', '--profile', 'cpu-tiny', '--vocab-size', '512',
    '--program', join(dir, 'program-1.md'), '--author', 'Maja Maintainer', '--replications', '0', '--baseline-runs', '1', '--policy', 'fixed')
  if (!t.equal(created.exitCode, 0, 'campaign create prepares the folder')) t.comment(created.all)
  t.match(created.stdout, /data: served by the coordinator \(emails\).*workers download it from \/data\/mail/, 'the campaign serves its data')
  // The coordinator cannot prepare this climbmix (no pyarrow here; elsewhere the stand-in shards are
  // not parquet): it says why; the maintainer creates the campaign without pinning a fingerprint.
  const refused = await cli('campaign', 'create', 'mix', '--source', 'climbmix', '--num-shards', '1', '--budget', '5', '--profile', 'cpu-tiny')
  t.equal(refused.exitCode, 2, 'campaign create fails clearly when it cannot prepare climbmix')
  if (!hasPyarrow) t.match(refused.stderr, /needs pyarrow: `pip install pyarrow`/, 'and names what is missing')
  t.equal((await cli('campaign', 'create', 'mix', '--source', 'climbmix', '--num-shards', '1', '--budget', '5', '--profile', 'cpu-tiny', '--no-prepare')).exitCode, 0, 'with --no-prepare it is created')
  const alice = (await cli('token', 'create', 'alice')).stdout.trim()
  const bob = (await cli('token', 'create', 'bob')).stdout.trim()
  await rm(emails, { recursive: true, force: true }) // from now on only the coordinator has the data

  const claude = await startMessagesServer(claudeScript())
  t.teardown(claude.close)
  const coord = execa(process.execPath, [coordinatorCli, '--data', data, 'start', '--port', '0'], { env, reject: false })
  const url = await new Promise<string>((resolve, reject) => {
    coord.stdout!.on('data', (b: Buffer) => { const m = /listening on (\S+)/.exec(String(b)); if (m) resolve(m[1]) })
    coord.on('exit', code => reject(new Error(`coordinator exited with ${code}`)))
  })
  const workers: ResultPromise[] = []
  // One unit at a time (no pipelining): a unit is made under the program.md of its time, so units a
  // worker already held when program.md changed would each be trained before one under the new one.
  const join_ = (name: string, token: string, extra: Record<string, string>) => execa(process.execPath, [workerCli, 'join', url, '--token', token, '--name', name, '--state', join(dir, name), '--no-pipeline'],
    { reject: false, all: true, env: { ...env, ...extra }, extendEnv: true })
  workers.push(join_('w-alice', alice, { ANTHROPIC_API_KEY: 'sk-test', ANTHROPIC_BASE_URL: claude.url }))
  workers.push(join_('w-bob', bob, { ANTHROPIC_API_KEY: '' }))
  t.teardown(() => { for (const w of workers) w.kill('SIGKILL'); coord.kill('SIGKILL') })

  // The maintainer changes program.md once the agent has worked under the first one.
  await until('a Claude request under the first program.md', () => claude.requests.some(r => systemOf(r).includes(MARK_1)))
  const set = await cli('program', 'set', 'mail', join(dir, 'program-2.md'), '--author', 'Maja Maintainer', '-m', 'focus on the schedule')
  if (!t.equal(set.exitCode, 0, 'program set works while the coordinator runs')) t.comment(set.all)
  await until('a Claude request under the changed program.md', () => claude.requests.some(r => systemOf(r).includes(MARK_2)))

  const api = createTRPCClient<AppRouter>({ links: [httpLink({ url: `${url}/trpc` })] })
  const done = await until('experiments with metrics from both workers', async () => {
    const list = (await api.dashboard.experiments.query({ campaign: 'mail', limit: 100 })).filter(e => e.valBpb !== null)
    return new Set(list.map(e => e.workerId)).size === 2 && list
  })
  for (const w of workers) w.kill('SIGTERM')
  const [aliceOut, bobOut] = (await Promise.all(workers)).map(o => String(o.all ?? ''))
  coord.kill('SIGTERM')
  await coord

  t.ok(done.every(e => e.valBpb! > 0), 'both workers trained on the served data and reported val_bpb')
  for (const [name, out] of [['alice', aliceOut], ['bob', bobOut]] as const) {
    t.match(out, /data set of mail downloaded and verified \(7 files\)/, `${name} downloaded the served data set`)
    t.match(out, /not taking work from mix: cannot get the data of mix \(climbmix \(1 shard\)\)/, `${name} skips the climbmix campaign, saying why`)
    if (!hasPyarrow) t.match(out, /install pyarrow/, `${name} is told what to do about it`)
    t.notMatch(out, /not taking work from mail/, `${name} takes work from the served campaign`)
    const served = await readdir(join(dir, `w-${name}`, 'data', '_served'))
    t.equal(served.filter(f => /^[0-9a-f]{64}$/.test(f)).length, 1, `${name} holds one verified copy`)
    t.notOk(served.some(f => f.endsWith('.partial') || f.endsWith('.lock')), 'nothing partial or locked is left')
  }
  t.notOk(existsSync(emails), 'the source folder is gone: the workers had only the served copy')

  const first = claude.requests.find(r => systemOf(r).includes(MARK_1))!
  t.match(text(first.messages[0].content), /## The swarm's memory/, "the agent's first message carries the swarm view")
  t.ok(first.tools?.some(tool => tool.name === 'search_experiments'), 'and its tools include the swarm search')
  const later = claude.requests.filter(r => systemOf(r).includes(MARK_2))
  t.ok(later.length > 0 && later.every(r => !systemOf(r).includes(MARK_1)), 'units after the change carry only the new program.md')

  const Database = createRequire(join(root, 'coordinator/package.json'))('better-sqlite3')
  const db = new Database(join(data, 'coordinator.db'), { readonly: true })
  t.teardown(() => db.close())
  const versions = db.prepare("select distinct program_version as v from unit_context where campaign = 'mail'").all() as { v: string }[]
  t.equal(versions.length, 2, 'units name the program version they were made under: both versions appear')
  const log = await cli('program', 'log', 'mail')
  t.match(log.stdout, /Maja Maintainer\tfocus on the schedule\n.*Maja Maintainer\tprogram.md at campaign creation/, 'program.md keeps its history with author and message')
})

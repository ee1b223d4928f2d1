import t from 'tap'
import { readdirSync, readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { execa, type ResultPromise } from 'execa'
import { openCoordinator, createCampaign, createWorkerToken } from '@autoresearch-grid/coordinator'
import { experiments } from '../../../coordinator/src/db/schema.ts'
import { joinCoordinator } from '../../src/loop/join.ts'
import { sharedCorpus } from '../fixtures/corpus.ts'
import { HeuristicAgent } from '../../src/agent/heuristic-agent.ts'
import { until } from '../../../shared/test/support/until.ts'
import { coordinatorCli } from '../../../shared/test/support/cli.ts'

// The coordinator goes away while a worker trains (killed: the real CLI, SIGKILL); the result
// waits in the worker's spool; the coordinator comes back on the same port with the same data; the
// result arrives exactly once.
const trainerDir = fileURLToPath(new URL('../../../trainer/', import.meta.url))
const TRAIN = readFileSync(join(trainerDir, 'train.py'), 'utf8')

async function freePort(): Promise<number> {
  const s = createServer()
  await new Promise<void>(resolve => s.listen(0, '127.0.0.1', resolve))
  const port = (s.address() as { port: number }).port
  await new Promise<void>(resolve => s.close(() => resolve()))
  return port
}

/** Wrapped: an async function returning the process itself would wait for it to exit. */
async function start(data: string, port: number): Promise<{ proc: ResultPromise }> {
  const proc = execa(process.execPath, [coordinatorCli, '--data', data, 'start', '--port', String(port)], { reject: false, all: true })
  let out = ''
  await new Promise<void>((resolve, reject) => {
    proc.all!.on('data', (b: Buffer) => { out += String(b); if (/listening on/.test(out)) resolve() })
    proc.on('exit', code => reject(new Error(`coordinator exited with ${code}:\n${out}`)))
  })
  return { proc }
}

t.test('a result finished while the coordinator is down is spooled and delivered exactly once when it is back', async t => {
  // Not t.testdir: git may still be tidying the coordinator's repository when the test ends.
  const dir = await mkdtemp(join(tmpdir(), 'arg-spool-'))
  t.teardown(() => rm(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 }))
  const data = join(dir, 'coordinator')
  const port = await freePort()
  const setup = await openCoordinator(data)
  await createCampaign(setup, { name: 'demo', seed: { 'train.py': TRAIN }, spec: { budgetSeconds: 3, profile: 'cpu-tiny', vocabSize: 512 } })
  const token = createWorkerToken(setup, 'alice', 'alice@example.org').token
  setup.close()
  let coordinator = (await start(data, port)).proc
  t.teardown(() => { coordinator.kill('SIGKILL') })

  const lines: string[] = []
  const said = { everyMs: 100, describe: () => `the worker said:\n${lines.join('\n')}` }
  const stateDir = join(dir, 'worker')
  const worker = joinCoordinator({
    url: `http://127.0.0.1:${port}`, token, name: 'w1', stateDir, dataRoot: (await sharedCorpus()).root, trainerDir, agent: new HeuristicAgent(),
    pipeline: false, maxUnits: 1, redeliverMs: 200, deliverAttemptMs: 1000, reconnectMaxMs: 1000, log: l => lines.push(l),
  })
  worker.catch(() => {})

  await until('training to start', () => lines.some(l => /^u?\S+ (baseline|explore) on demo/.test(l)), said)
  coordinator.kill('SIGKILL')
  await coordinator
  await until('the result to be spooled and its delivery to fail', () => lines.some(l => /could not deliver/.test(l)), said)
  t.equal(readdirSync(join(stateDir, 'spool')).filter(f => f.endsWith('.json')).length, 1, 'the result is on disk')

  coordinator = (await start(data, port)).proc
  const summary = await worker
  t.equal(summary.units, 1)
  const failed = lines.findIndex(l => /could not deliver \(no answer within/.test(l))
  t.ok(lines.slice(failed).some(l => /^connected to/.test(l)), 'the worker reconnected after delivery failed')
  t.same(readdirSync(join(stateDir, 'spool')).filter(f => f.endsWith('.json')), [], 'the spool is empty')

  coordinator.kill('SIGKILL')
  await coordinator
  const check = await openCoordinator(data)
  const rows = check.db.select().from(experiments).all()
  check.close()
  t.equal(rows.length, 1, 'exactly one experiment')
  t.ok(rows[0].valBpb && rows[0].valBpb > 0, `with its val_bpb ${rows[0].valBpb}`)
  t.ok(lines.slice(failed).some(l => l.startsWith(`${rows[0].unitId}: `) && !/could not deliver/.test(l)), 'the coordinator\'s decision came back')
})

import t from 'tap'
import { spawn } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CoordinatorProcess, prepareDataDir, readDb } from './coordinator-process.ts'
import { ScriptedWorker } from './scripted-worker.ts'
import { scriptedResult } from './trained-value.ts'
import { sleep, until } from '../../../shared/test/support/until.ts'
import { workerCli } from '../../../shared/test/support/cli.ts'
import { linkCorpus } from '../../../worker/test/fixtures/corpus.ts'

// DESIGN §8: leases, not locks. A real `worker join` trains on CPU and is killed with SIGKILL in
// the middle of a run; the units it held come back to the queue when their leases run out
// (budget 5 s + margin 20 s here) and another worker takes them. The margin is what a live
// worker's heartbeat must come within: 3 s let leases of live workers expire at load average 30
// (13 expiries in one run), so it is wide; the test waits one lease longer for it.
const BUDGET = 5
const MARGIN = 20

/** Every process below `pid`, from /proc (children first found, then theirs). */
function descendants(pid: number): number[] {
  const parent = new Map<number, number>()
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      parent.set(Number(entry), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]))
    } catch { /* gone meanwhile */ }
  }
  const out: number[] = []
  const walk = (p: number) => { for (const [c, pp] of parent) if (pp === p) { out.push(c); walk(c) } }
  walk(pid)
  return out
}

const alive = (pid: number) => { try { process.kill(pid, 0); return true } catch { return false } }

interface UnitRow { id: string; kind: string; state: string; workerId: string | null; leaseToken: string | null; attempts: number; progress: string | null; leaseExpiresAt: number | null }

t.test('a worker killed mid-training: its units return to the queue after the lease and another worker does them', async t => {
  const dir = await mkdtemp(join(tmpdir(), 'arg-kill-worker-'))
  const data = join(dir, 'data')
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const [doomedToken, rescuerToken] = await prepareDataDir(data, { budget: BUDGET, noise: { replications: 0, baselineRuns: 1 }, contributors: ['dora', 'rex'] })
  const coord = new CoordinatorProcess(data, ['--lease-margin', String(MARGIN)])
  t.teardown(() => coord.stop())
  await coord.start()

  await linkCorpus(join(dir, 'doomed', 'data', 'demo')) // the suite's prepared data (worker/test/fixtures/corpus.ts)
  const worker = spawn(process.execPath, [workerCli, 'join', coord.url, '--token', doomedToken, '--name', 'doomed', '--state', join(dir, 'doomed')],
    { stdio: ['ignore', 'pipe', 'pipe'] })
  let log = ''
  worker.stdout!.on('data', b => { log = (log + b).slice(-4000) })
  worker.stderr!.on('data', b => { log = (log + b).slice(-4000) })
  const orphans: number[] = []
  t.teardown(() => { for (const pid of [worker.pid!, ...orphans]) if (alive(pid)) process.kill(pid, 'SIGKILL') })

  // Wait until the worker is training: a unit leased to it reports progress through heartbeats.
  const units = (): UnitRow[] => readDb(data, db => db.prepare(`select u.id, u.kind, u.state, u.worker_id as workerId, u.lease_token as leaseToken,
    u.attempts, u.progress, u.lease_expires_at as leaseExpiresAt from work_units u`).all() as UnitRow[])
  const workerId = () => readDb(data, db => (db.prepare("select id from workers where name = 'doomed'").get() as { id: string } | undefined)?.id)
  const training = await until('the worker to train a unit, or to exit', () => {
    const id = workerId()
    return (id ? units().find(u => u.workerId === id && u.state === 'leased' && u.progress !== null) : undefined) ?? (worker.exitCode !== null && 'exited')
  }, { describe: () => log })
  if (training === 'exited') return t.fail(`the worker exited before it trained anything:\n${log}`)
  t.pass(`the worker started training a unit (${training.kind} ${training.id})`)
  // Their leases as last renewed before the kill: the earliest they can run out.
  const held = units().filter(u => u.workerId === training.workerId && u.state === 'leased')
  const below = descendants(worker.pid!)
  worker.kill('SIGKILL')
  const killedAt = Date.now()
  await new Promise(r => worker.once('exit', r))
  await sleep(200)
  orphans.push(...below.filter(alive))
  // The trainer runs in a process group of its own, which the worker kills on any exit it sees;
  // SIGKILL it does not see. Recorded, not asserted: the worker is another suite's subject.
  const what = orphans.map(pid => { try { return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').slice(0, 3).join(' ') } catch { return '?' } })
  t.comment(`processes left running by the killed worker: ${orphans.length} of ${below.length} below it: ${what.join('; ')}`)

  const rescuer = new ScriptedWorker({ url: coord.url, token: rescuerToken, name: 'rescuer', result: u => scriptedResult(u, false, 'rescuer'), trainMs: () => 1000 })
  t.teardown(() => rescuer.stop())
  await rescuer.start()
  const lease = (BUDGET + MARGIN) * 1000
  const taken = () => held.map(h => rescuer.units.find(u => u.id === h.id))
  await until(`the ${held.length} units the killed worker held to reach the rescuer`, () => taken().every(Boolean), { everyMs: 100 })
  const retakenMs = Math.max(...held.map(h => rescuer.takenAt.get(h.id)!)) - killedAt
  t.pass(`all ${held.length} units the worker held were taken by another worker, ${retakenMs} ms after the kill`)
  for (const [i, u] of taken().entries()) {
    if (!u) continue
    t.not(u.leaseToken, held[i].leaseToken, `${held[i].kind} ${u.id} comes with a new lease`)
  }
  await rescuer.drain()
  const after = units().filter(u => held.some(h => h.id === u.id))
  t.ok(after.every(u => u.state === 'done' && u.attempts >= 2), `each was leased again and is done (leased ${after.map(u => u.attempts).join(', ')} times)`)
  const expired = readDb(data, db => (db.prepare("select count(*) as n from events where type = 'lease-expired'").get() as { n: number }).n)
  t.ok(expired >= held.length, `the coordinator logged ${expired} expired lease(s)`)
  const exp = readDb(data, db => db.prepare('select unit_id as unitId, worker_id as workerId from experiments').all() as { unitId: string; workerId: string }[])
  t.equal(exp.length, new Set(exp.map(e => e.unitId)).size, 'one experiment per unit')
  t.ok(held.every(h => exp.some(e => e.unitId === h.id && e.workerId === rescuer.workerId)), "the rescuer's results are recorded for the killed worker's units")
  // Order, not speed: no unit went to the rescuer before its lease, as last renewed, ran out.
  t.same(held.filter(h => rescuer.takenAt.get(h.id)! < h.leaseExpiresAt!).map(h => h.id), [],
    `re-queued only once the lease ran out: ${retakenMs} ms after the kill, lease ${lease} ms renewed by heartbeats`)
  t.comment(`RESULT kill-worker: kills=1 units-held=${held.length} retaken=${taken().filter(Boolean).length} retaken-after-ms=${retakenMs} lease-ms=${lease} ` +
    `experiments=${exp.length} lost=${held.length - taken().filter(Boolean).length} orphaned-processes=${orphans.length}`)
})

/**
 * One run of the coordinator load benchmark: a real coordinator (the CLI, as its own process, so
 * its memory and CPU can be read from /proc), a campaign seeded with the real train.py, and N
 * simulated workers spread over several client processes, each worker with its own WebSocket.
 * Everything talks over 127.0.0.1, and every phase has a time limit, so a run always ends.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { loadavg, setPriority, tmpdir } from 'node:os'
import { join } from 'node:path'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import { openCoordinator } from '../../coordinator/src/coordinator.ts'
import { createCampaign } from '../../coordinator/src/campaigns/campaigns.ts'
import { createWorkerToken } from '../../coordinator/src/auth/access.ts'
import { openDb } from '../../coordinator/src/db/open.ts'
import type BetterSqlite3 from '../../coordinator/node_modules/@types/better-sqlite3/index.d.ts'
import type { ClientConfig, ClientStats, FromClient, ToClient } from './client.ts'
import { openFilesHardLimit, sample, type ProcSample } from './proc.ts'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
/** Read-only looks at the coordinator's database while it runs (WAL lets a reader in beside it). */
const Database = createRequire(new URL('../../coordinator/package.json', import.meta.url))('better-sqlite3') as typeof BetterSqlite3
const CLIENT = fileURLToPath(new URL('./client.ts', import.meta.url))
const CAMPAIGN = 'bench'
/** Niceness of the client processes (see where they are started). */
const CLIENT_NICENESS = 10

export interface LoadOptions {
  workers: number
  /**
   * Length of the measured window. Workers connect first (each holds the unit it got without
   * training it), then all start training, and the window opens once the first runs end.
   */
  seconds: number
  /** Reports per second the workers offer together: each trains N / rate seconds on average. */
  rate: number
  /** Simulated workers per client process. */
  workersPerProcess?: number
  /** Heartbeat interval when the coordinator does not say (it does: workers/heartbeat-interval.ts). */
  heartbeatMs?: number
  /** The clients' keep-alive interval (ms of quiet before a ping); absent: the real worker's. */
  pingMs?: number
  /** false: the clients skip a candidate's `swarm.claim` and `worker.known` (the bench before session 26). */
  candidateCalls?: boolean
  /** How long the workers may take to connect before the window starts anyway (default 180 s). */
  connectTimeoutSeconds?: number
  /** Extra node flags for the coordinator, e.g. --cpu-prof. */
  nodeArgs?: string[]
  log?: (line: string) => void
}

export interface Percentiles { n: number; p50: number; p99: number; max: number }

export interface LoadResult {
  workers: number
  connected: number
  helloFailures: number
  /** Until every worker said hello; null if they had not when the connect time limit ran out. */
  connectSeconds: number | null
  /** Per worker: opening its WebSocket to the reply to its hello, in ms. */
  connect: Percentiles
  workersWithUnit: number
  /** Subscribe → first unit, and report sent → next unit, in ms (the latter within the window). */
  firstUnit: Percentiles
  nextUnit: Percentiles
  meanTrainSeconds: number
  offeredPerSecond: number
  reportsPerSecond: number
  reportsInWindow: number
  /** Experiments the coordinator stored over the whole run, by status, and merges (new bests). */
  experiments: Record<string, number>
  merges: number
  heartbeatsPerSecond: number
  cpuPercent: number
  gitCpuPercent: number
  clientCpuPercent: number
  rssMb: number
  peakRssMb: number
  errors: Record<string, number>
  windowSeconds: number
  /** The machine's 1-minute load average when the run began: anything above ~0 is someone else's work. */
  loadBefore: number
  /**
   * Coordinator CPU (of one core) between "go" and the window, when every worker is connected and
   * training but no run has ended yet: heartbeats, keep-alives, timers and garbage collection with
   * no report and no lease, the fixed cost of the connected workers. NaN when that phase is under 4 s.
   */
  quietCpuPercent: number
  /** The most units waiting in the queue at once during the window (sampled twice a second). */
  queuedMax: number
}

function percentiles(values: number[]): Percentiles {
  const v = [...values].sort((a, b) => a - b)
  const at = (q: number) => (v.length ? v[Math.min(v.length - 1, Math.floor(q * v.length))] : NaN)
  return { n: v.length, p50: at(0.5), p99: at(0.99), max: v.length ? v[v.length - 1] : NaN }
}

const sleep = (ms: number) => new Promise(r => setTimeout(r, ms))
/** A sleep that does not keep the process alive: for races against something that usually wins. */
const limit = (ms: number) => new Promise(r => setTimeout(r, ms).unref())

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout
  return Promise.race([p, new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms / 1000} s`)), ms) })])
    .finally(() => clearTimeout(timer))
}

/** Starts `coordinator start` on a free loopback port, with the open-files limit raised to the hard limit. */
async function startCoordinator(dataDir: string, nodeArgs: string[], log: (s: string) => void): Promise<{ child: ChildProcess; url: string }> {
  const script = `ulimit -n ${openFilesHardLimit()} 2>/dev/null; exec node ${nodeArgs.join(' ')} coordinator/bin/coordinator.mjs --data "$0" start --port 0 --host 127.0.0.1`
  const child = spawn('bash', ['-c', script, dataDir], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LOG_LEVEL: 'warn' } })
  child.stderr!.on('data', (b: Buffer) => log(`coordinator: ${b.toString().trimEnd()}`))
  const url = await within(new Promise<string>((resolve, reject) => {
    let out = ''
    child.stdout!.on('data', (b: Buffer) => {
      out += b.toString()
      const m = /listening on (http:\/\/\S+)/.exec(out)
      if (m) resolve(m[1])
    })
    child.once('exit', code => reject(new Error(`the coordinator exited (${code}) before listening: ${out}`)))
  }), 60_000, 'starting the coordinator')
  return { child, url }
}

async function stopProcess(child: ChildProcess, ms = 15_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>(r => child.once('exit', () => r()))
  child.kill('SIGTERM')
  await Promise.race([exited, limit(ms)])
  if (child.exitCode === null && child.signalCode === null) {
    child.kill('SIGKILL')
    await exited
  }
}

export async function runLoad(o: LoadOptions): Promise<LoadResult> {
  const log = o.log ?? (() => {})
  const perProcess = o.workersPerProcess ?? 1250
  const heartbeatMs = o.heartbeatMs ?? 5000
  // Ten GPUs per contributor: the coordinator limits the units one contributor holds at once
  // (32 by default) and offers no exploration to a class with fewer contributors than can verify it.
  const workersPerToken = 10
  const meanTrainMs = Math.max(500, (o.workers / o.rate) * 1000)
  const budgetSeconds = Math.max(1, Math.round(meanTrainMs / 1000))
  const loadBefore = loadavg()[0]
  const dir = await mkdtemp(join(tmpdir(), 'arg-load-'))
  const clients: ChildProcess[] = []
  let coordinator: ChildProcess | undefined
  try {
    // The campaign and contributors' tokens, written straight into the data dir before the server starts.
    const setup = await openCoordinator(dir)
    await createCampaign(setup, {
      name: CAMPAIGN, seed: { 'train.py': await readFile(join(ROOT, 'trainer/train.py'), 'utf8') },
      spec: { budgetSeconds, profile: 'gpu' },
    })
    const tokens = Array.from({ length: Math.ceil(o.workers / workersPerToken) }, (_, k) => createWorkerToken(setup, `bench-contributor-${k}`, `c${k}@bench.invalid`).token)
    setup.close()

    const started = await startCoordinator(dir, o.nodeArgs ?? [], log)
    coordinator = started.child
    const pid = coordinator.pid!
    log(`coordinator ${started.url} (pid ${pid}); ${o.workers} workers, mean training ${(meanTrainMs / 1000).toFixed(2)} s, budget ${budgetSeconds} s`)

    const processes = Math.max(1, Math.ceil(o.workers / perProcess))
    const ready: Promise<Extract<FromClient, { type: 'ready' }>>[] = []
    const connectedSoFar: number[] = []
    const done: Promise<ClientStats>[] = []
    const t0 = performance.now()
    for (let p = 0; p < processes; p++) {
      const first = Math.floor((p * o.workers) / processes)
      const count = Math.floor(((p + 1) * o.workers) / processes) - first
      const child = fork(CLIENT, [], { cwd: ROOT, execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
      // The simulated workers stand for other machines: on this one they yield the CPU to the
      // coordinator, or eight busy client processes would starve the process being measured.
      setPriority(child.pid!, CLIENT_NICENESS)
      clients.push(child)
      connectedSoFar.push(0)
      child.on('message', (m: FromClient) => { if (m.type === 'progress' || m.type === 'ready') connectedSoFar[p] = m.connected })
      const messages = (type: FromClient['type']) => new Promise<FromClient>((resolve, reject) => {
        child.on('message', (m: FromClient) => { if (m.type === type) resolve(m) })
        child.once('exit', code => reject(new Error(`client process ${p} exited (${code}) before sending "${type}"`)))
      })
      ready.push(messages('ready') as never)
      done.push(messages('stats').then(m => (m as Extract<FromClient, { type: 'stats' }>).stats))
      done[p].catch(() => {})
      ready[p].catch(() => {})
      const config: ClientConfig = { url: started.url, first, count, tokens, workersPerToken, meanTrainMs, budgetSeconds, heartbeatMs, pingMs: o.pingMs, candidateCalls: o.candidateCalls, connectConcurrency: 50, seed: 1 + p }
      child.send({ type: 'start', config } satisfies ToClient)
    }
    const readies = await within(Promise.all(ready), (o.connectTimeoutSeconds ?? 180) * 1000, 'connecting').catch(() => null)
    const connectSeconds = readies ? (performance.now() - t0) / 1000 : null
    const connectedAtStart = connectedSoFar.reduce((a, b) => a + b, 0)
    log(readies ? `all hellos done in ${connectSeconds!.toFixed(1)} s (${connectedAtStart} connected)`
      : `only ${connectedAtStart} of ${o.workers} workers had said hello after ${o.connectTimeoutSeconds ?? 180} s; measuring anyway`)

    // Everyone trains from now on; the window opens when the first of those runs end.
    for (const c of clients) c.send({ type: 'go' } satisfies ToClient)
    // Runs last 0.5-1.5 × the mean (client.ts): until half the mean has passed no report arrives.
    const quietMs = meanTrainMs / 2 - 2000
    let quietCpuPercent = NaN
    if (quietMs >= 4000) {
      await sleep(1000)
      const a = sample(pid)
      await sleep(quietMs)
      const b = sample(pid)
      if (a && b) quietCpuPercent = (100 * (b.cpuSeconds - a.cpuSeconds)) / (quietMs / 1000)
      await sleep(1000)
    } else await sleep(meanTrainMs / 2)
    const windowStart = Date.now()
    const first: ProcSample | null = sample(pid)
    const clientsFirst = clients.map(c => sample(c.pid!))
    let last = first
    const peek = new Database(join(dir, 'coordinator.db'), { readonly: true })
    const queued = peek.prepare(`select count(*) as n from work_units where state = 'queued'`)
    let queuedMax = 0
    while (Date.now() - windowStart < o.seconds * 1000) {
      await sleep(500)
      last = sample(pid) ?? last
      queuedMax = Math.max(queuedMax, (queued.get() as { n: number }).n)
    }
    peek.close()
    const windowEnd = Date.now()
    const elapsedSeconds = (performance.now() - t0) / 1000
    const clientsLast = clients.map(c => sample(c.pid!))
    for (const c of clients) c.send({ type: 'stop' } satisfies ToClient)
    const stats = await within(Promise.all(done), 60_000, 'collecting client statistics')
    const windowSeconds = (windowEnd - windowStart) / 1000
    // Generous: a coordinator started with --cpu-prof writes its profile as it exits.
    await stopProcess(coordinator, 60_000)

    const db = openDb(join(dir, 'coordinator.db'))
    const byStatus = db.$client.prepare('select status, count(*) as n from experiments group by status').all() as { status: string; n: number }[]
    const merges = (db.$client.prepare('select count(*) as n from merges').get() as { n: number }).n
    db.$client.close()

    const inWindow = (pairs: number[]) => {
      const out: number[] = []
      for (let i = 0; i < pairs.length; i += 2) if (pairs[i] >= windowStart && pairs[i] < windowEnd) out.push(pairs[i + 1])
      return out
    }
    const cpu = (a: ProcSample | null, b: ProcSample | null, key: 'cpuSeconds' | 'childCpuSeconds') => (a && b ? (100 * (b[key] - a[key])) / windowSeconds : NaN)
    const errors: Record<string, number> = {}
    for (const s of stats) for (const [k, n] of Object.entries(s.errors)) errors[k] = (errors[k] ?? 0) + n
    const reportsInWindow = stats.reduce((n, s) => n + s.acks.filter(t => t >= windowStart && t < windowEnd).length, 0)
    return {
      workers: o.workers,
      connected: stats.reduce((n, s) => n + s.connected, 0),
      helloFailures: stats.reduce((n, s) => n + s.helloFailures, 0),
      connectSeconds,
      connect: percentiles(stats.flatMap(s => s.connectMs)),
      workersWithUnit: stats.reduce((n, s) => n + s.workersWithUnit, 0),
      firstUnit: percentiles(stats.flatMap(s => s.firstUnit.filter((_, i) => i % 2 === 1))),
      nextUnit: percentiles(stats.flatMap(s => inWindow(s.nextUnit))),
      meanTrainSeconds: meanTrainMs / 1000,
      offeredPerSecond: o.workers / (meanTrainMs / 1000),
      reportsPerSecond: reportsInWindow / windowSeconds,
      reportsInWindow,
      experiments: Object.fromEntries(byStatus.map(r => [r.status, r.n])),
      merges,
      heartbeatsPerSecond: stats.reduce((n, s) => n + s.heartbeats, 0) / elapsedSeconds,
      cpuPercent: cpu(first, last, 'cpuSeconds'),
      gitCpuPercent: cpu(first, last, 'childCpuSeconds'),
      clientCpuPercent: clientsFirst.reduce((n, a, i) => n + cpu(a, clientsLast[i], 'cpuSeconds'), 0),
      rssMb: last?.rssMb ?? NaN,
      peakRssMb: last?.peakRssMb ?? NaN,
      errors,
      windowSeconds,
      loadBefore,
      quietCpuPercent,
      queuedMax,
    }
  } finally {
    for (const c of clients) await stopProcess(c, 5000)
    if (coordinator) await stopProcess(coordinator)
    await rm(dir, { recursive: true, force: true })
  }
}

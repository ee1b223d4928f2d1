/**
 * One client process of the coordinator load benchmark: it holds many simulated workers, each with
 * its own tRPC WebSocket connection to the coordinator (loopback only: see ws-client.ts), and runs the worker's loop
 * on a compressed clock: hello, subscribe to `worker.assignments`, for a candidate claim its code
 * (`swarm.claim`) and ask whether it was measured (`worker.known`), "train" for a second or so,
 * report, and heartbeat as often as the coordinator asks, like the real worker. Started by load.ts
 * with an IPC channel; it gets `start`, `go` and `stop` messages and answers with `ready` and `stats`.
 */
import { createRng, isCandidate, sourceHash, type AssignmentEvent, type ReportInput, type WorkUnit } from '../../shared/src/index.ts'
import { boundClient, loopbackAddress } from './ws-client.ts'
import { editSource, HARDWARE, logTail, runMetrics } from './research-model.ts'
import { appendFileSync } from 'node:fs'

/**
 * With AUTORESEARCH_STEP_TRACE=<file> (the coordinator's step trace, coordinator/src/trace/steps.ts),
 * each process also writes <file>.client-<pid>: a line per next unit (`unit <report sent, epoch ms>
 * <worker> <ms until the unit came>`) and per late turn of its event loop (`lag <epoch ms> <ms late>`),
 * for bench/coordinator/steps.ts to split a slow next unit into server and client time.
 */
const TRACE = process.env.AUTORESEARCH_STEP_TRACE ? `${process.env.AUTORESEARCH_STEP_TRACE}.client-${process.pid}` : null
const traceLines: string[] = []
const epochNow = () => performance.timeOrigin + performance.now()
if (TRACE) {
  let last = performance.now()
  setInterval(() => {
    const now = performance.now()
    if (now - last - 5 > 10) traceLines.push(`lag ${epochNow().toFixed(2)} ${(now - last - 5).toFixed(1)}`)
    last = now
  }, 5).unref()
  setInterval(() => { if (traceLines.length) appendFileSync(TRACE, traceLines.splice(0).join('\n') + '\n') }, 1000).unref()
  process.on('exit', () => { if (traceLines.length) appendFileSync(TRACE, traceLines.splice(0).join('\n') + '\n') })
}

export interface ClientConfig {
  url: string
  /** Global index of the first worker of this process, and how many it runs. */
  first: number
  count: number
  /** tokens[k] belongs to contributor k; worker i uses tokens[floor(i / workersPerToken)]. */
  tokens: string[]
  workersPerToken: number
  /** Simulated training time: uniform in [0.5, 1.5] × this. */
  meanTrainMs: number
  budgetSeconds: number
  heartbeatMs: number
  /** The clients' keep-alive: pings after this long without a message (absent: the real worker's). */
  pingMs?: number
  /** false: no `swarm.claim` and `worker.known` before a candidate's run (as the bench before session 26). */
  candidateCalls?: boolean
  /** Hellos in flight at once, per process. */
  connectConcurrency: number
  seed: number
}

/** `go`: every process has connected its workers; start training the units held. */
export type ToClient = { type: 'start'; config: ClientConfig } | { type: 'go' } | { type: 'stop' }

export interface ClientStats {
  connected: number
  /** Per worker: ms from opening its WebSocket to the reply to its hello. */
  connectMs: number[]
  helloFailures: number
  /** Epoch ms of each acknowledged report. */
  acks: number[]
  /** Pairs [epoch ms the wait began, ms until the unit came]: first unit after subscribing, and later ones. */
  firstUnit: number[]
  nextUnit: number[]
  workersWithUnit: number
  units: number
  idleEvents: number
  /** Units the coordinator took back while they ran (`cancel`: their candidate was closed). */
  cancelled: number
  bestChanged: number
  heartbeats: number
  errors: Record<string, number>
}

export type FromClient =
  | { type: 'progress'; connected: number }
  | { type: 'ready'; connected: number; helloFailures: number }
  | { type: 'stats'; stats: ClientStats }

type Api = ReturnType<typeof boundClient>['api']

interface SimWorker {
  index: number
  api: Api
  close: () => void
  workerId: string
  held: WorkUnit | null
  /** performance.now() and Date.now() when it began waiting for a unit; null while it holds one. */
  waitingSince: { perf: number; epoch: number; first: boolean } | null
  training: NodeJS.Timeout | null
  beat: NodeJS.Timeout | null
  unsubscribe: () => void
  gotUnit: boolean
  /** Hashes of the sources this worker received (the real worker's client/sources.ts keeps the sources). */
  sourcesHeld: string[]
}

function send(m: FromClient): void {
  process.send!(m)
}

async function run(cfg: ClientConfig, go: Promise<void>, stopped: Promise<void>): Promise<ClientStats> {
  // Each client process is reproducible given its seed.
  const random = createRng(cfg.seed).next
  const stats: ClientStats = { connected: 0, connectMs: [], helloFailures: 0, acks: [], firstUnit: [], nextUnit: [], workersWithUnit: 0, units: 0, idleEvents: 0, cancelled: 0, bestChanged: 0, heartbeats: 0, errors: {} }
  const fail = (what: string, err: unknown) => {
    // Calls cut off by the stop itself (their sockets close under them) are not failures.
    if (stopping) return
    const key = `${what}: ${(err as Error).message}`.slice(0, 160)
    stats.errors[key] = (stats.errors[key] ?? 0) + 1
  }
  const workers: SimWorker[] = []
  const pendingReports = new Set<Promise<unknown>>()
  let stopping = false

  const waitForUnit = (w: SimWorker, first: boolean) => { w.waitingSince = { perf: performance.now(), epoch: Date.now(), first } }

  const report = (w: SimWorker, unit: WorkUnit, trainedMs: number, edit: { source: string; description: string }) => {
    w.training = null
    if (stopping) return
    const name = unit.editableFiles[0]
    const r: ReportInput = {
      unitId: unit.id, leaseToken: unit.leaseToken, status: 'ok', source: { ...unit.source, [name]: edit.source }, description: edit.description,
      diff: '', metrics: runMetrics(edit.source, cfg.budgetSeconds, random), logTail: logTail(), agentNotes: '',
      timings: { agentSeconds: 0.2, runSeconds: trainedMs / 1000 },
    }
    w.held = null
    waitForUnit(w, false)
    // A report that crossed its unit's `cancel` on the wire is refused as cancelled: no failure.
    const p = w.api.worker.report.mutate({ workerId: w.workerId, report: r }).then(() => { stats.acks.push(Date.now()) },
      err => (/^work unit "[^"]+" was cancelled/.test((err as Error).message) ? stats.cancelled++ : fail('report', err)))
    pendingReports.add(p)
    void p.finally(() => pendingReports.delete(p))
  }

  // The sources the simulated workers received, shared by hash: the worker's protocol has the
  // coordinator leave out a source the worker holds (shared/src/protocol.ts, HeldSources).
  const sources = new Map<string, Record<string, string>>()
  const onEvent = (w: SimWorker, e: AssignmentEvent) => {
    if (e.type === 'idle') stats.idleEvents++
    if (e.type === 'bestChanged') stats.bestChanged++
    // As the real worker (loop/held.ts): a cancelled unit's run stops, unreported, and the worker
    // waits for its next unit, which the coordinator sends for the room freed.
    if (e.type === 'cancel' && w.held?.id === e.unitId && !stopping) {
      stats.cancelled++
      if (w.training) clearTimeout(w.training)
      w.training = null
      w.held = null
      waitForUnit(w, false)
      return
    }
    if (e.type !== 'unit' || stopping) return
    stats.units++
    if (e.unit.sourceHash) {
      if (Object.keys(e.unit.source).length) sources.set(e.unit.sourceHash, e.unit.source)
      else e.unit.source = sources.get(e.unit.sourceHash) ?? {}
      if (!Object.keys(e.unit.source).length) { fail('unit', new Error('a unit without a source this worker never got')); return }
      if (!w.sourcesHeld.includes(e.unit.sourceHash)) w.sourcesHeld = [...w.sourcesHeld, e.unit.sourceHash].slice(-64)
    }
    if (!w.gotUnit) { w.gotUnit = true; stats.workersWithUnit++ }
    if (w.waitingSince) {
      const ms = performance.now() - w.waitingSince.perf
      if (TRACE && !w.waitingSince.first) traceLines.push(`unit ${(performance.timeOrigin + w.waitingSince.perf).toFixed(2)} ${w.workerId} ${ms.toFixed(2)}`)
      ;(w.waitingSince.first ? stats.firstUnit : stats.nextUnit).push(w.waitingSince.epoch, ms)
      w.waitingSince = null
    }
    w.held = e.unit
    const unit = e.unit
    const name = unit.editableFiles[0]
    const edit = isCandidate(unit.kind) ? editSource(unit.source[name], random) : { source: unit.source[name], description: `${unit.kind} run` }
    // The real worker claims its agent's candidate (agent/with-swarm.ts) and asks whether that exact
    // code was measured on its class (loop/experiment.ts) before it trains: two calls per candidate.
    if (isCandidate(unit.kind) && cfg.candidateCalls !== false) {
      const hash = sourceHash({ [name]: edit.source })
      w.api.swarm.claim.mutate({ workerId: w.workerId, unitId: unit.id, leaseToken: unit.leaseToken, sourceHash: hash, description: edit.description, changes: [], agent: 'bench' })
        .catch(err => fail('claim', err))
      w.api.worker.known.query({ workerId: w.workerId, campaign: unit.campaign, sourceHash: hash }).catch(err => fail('known', err))
    }
    const trainMs = cfg.meanTrainMs * (0.5 + random())
    // The first units wait for everyone to connect: connect time measures connecting, not the
    // report traffic of the workers that came first.
    if (started) w.training = setTimeout(() => report(w, unit, trainMs, edit), trainMs)
    else void go.then(() => { if (!stopping) w.training = setTimeout(() => report(w, unit, trainMs, edit), trainMs) })
  }
  let started = false
  void go.then(() => { started = true })

  const join = async (index: number): Promise<void> => {
    const contributor = Math.floor(index / cfg.workersPerToken)
    const opened = performance.now()
    const { api, close } = boundClient(cfg.url, cfg.tokens[contributor], loopbackAddress(contributor), cfg.pingMs)
    try {
      const { workerId, heartbeatSeconds } = await api.worker.hello.mutate({ name: `bench-${index}`, hardware: HARDWARE[index % HARDWARE.length], fingerprints: {}, version: 'bench', agent: 'heuristic' })
      stats.connectMs.push(performance.now() - opened)
      const w: SimWorker = { index, api, close, workerId, held: null, waitingSince: null, training: null, beat: null, unsubscribe: () => {}, gotUnit: false, sourcesHeld: [] }
      workers.push(w)
      stats.connected++
      waitForUnit(w, true)
      const sub = api.worker.assignments.subscribe({ workerId, capacity: 1, fingerprints: {}, sources: w.sourcesHeld }, {
        onData: e => onEvent(w, e),
        onError: err => fail('assignments', err),
      })
      w.unsubscribe = () => sub.unsubscribe()
      // Heartbeats as often as the coordinator asks, like the real worker (heartbeatMs when it does
      // not say), each worker at its own phase.
      let beatMs = heartbeatSeconds ? heartbeatSeconds * 1000 : cfg.heartbeatMs
      const heartbeat = () => {
        const units = w.held ? [{ unitId: w.held.id, leaseToken: w.held.leaseToken, progress: { step: 500, percent: 50, loss: 3.2, remainingSeconds: 150 } }] : []
        stats.heartbeats++
        w.api.worker.heartbeat.mutate({ workerId: w.workerId, units }).then(r => { if (r.heartbeatSeconds) beatMs = r.heartbeatSeconds * 1000 }, err => fail('heartbeat', err))
      }
      w.beat = setTimeout(function tick() { heartbeat(); w.beat = setTimeout(tick, beatMs) }, random() * beatMs)
    } catch (err) {
      stats.helloFailures++
      fail('hello', err)
      close()
    }
  }

  // Joins with a bounded number of hellos in flight, like a crowd arriving rather than one burst.
  let next = cfg.first
  const end = cfg.first + cfg.count
  const progress = setInterval(() => send({ type: 'progress', connected: stats.connected }), 1000)
  const joined = Promise.all(Array.from({ length: Math.min(cfg.connectConcurrency, cfg.count) }, async () => {
    while (next < end && !stopping) await join(next++)
  })).then(() => {
    clearInterval(progress)
    if (!stopping) send({ type: 'ready', connected: stats.connected, helloFailures: stats.helloFailures })
  })
  await Promise.race([joined.then(() => stopped), stopped])
  clearInterval(progress)
  stopping = true
  // Workers still waiting count with the wait so far (a lower bound): leaving them out would hide
  // exactly the slow assignments.
  for (const w of workers) {
    if (w.waitingSince) (w.waitingSince.first ? stats.firstUnit : stats.nextUnit).push(w.waitingSince.epoch, performance.now() - w.waitingSince.perf)
  }
  for (const w of workers) {
    if (w.training) clearTimeout(w.training)
    if (w.beat) clearTimeout(w.beat)
  }
  // Reports already sent may still be acknowledged; give them a moment, bounded.
  await Promise.race([Promise.allSettled([...pendingReports]), new Promise(r => setTimeout(r, 5000).unref())])
  for (const w of workers) {
    w.unsubscribe()
    w.close()
  }
  return stats
}

if (process.send) {
  let stop!: () => void
  const stopped = new Promise<void>(r => { stop = r })
  let go!: () => void
  const going = new Promise<void>(r => { go = r })
  process.on('message', (m: ToClient) => {
    if (m.type === 'go') go()
    if (m.type === 'start') {
      run(m.config, going, stopped).then(
        stats => process.connected ? process.send!({ type: 'stats', stats } satisfies FromClient, () => process.exit(0)) : process.exit(0),
        err => { console.error(err); process.exit(1) })
    }
    if (m.type === 'stop') stop()
  })
  // Bounded no matter what: a client whose parent died does not linger.
  process.on('disconnect', () => stop())
}

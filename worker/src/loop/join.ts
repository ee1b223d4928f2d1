import { join } from 'node:path'
import { LIMITS, type AssignmentEvent, type HelloReply, type Progress, type Report, type WorkUnit, isCandidate } from '@autoresearch-grid/shared'
import { findPython } from '@autoresearch-grid/trainer'
import type { Agent } from '../agent/agent.ts'
import { chooseAgent } from '../agent/choose.ts'
import { connect } from '../client/connect.ts'
import { ResumableFeed } from '../client/feed.ts'
import { probeHardware } from '../hardware/probe.ts'
import { chooseSandbox } from '../sandbox/choose.ts'
import { killLeftover } from '../runner/leftovers.ts'
import { plainProgress, progressFor, type ProgressSink } from '../ui/progress.ts'
import { Deliverer } from './deliver.ts'
import { DEFAULT_DEPTH_CAP, DepthGauge } from './depth.ts'
import { DutyCycle } from './duty-cycle.ts'
import { prepareExperiment, runDirOf, seatRunDir, trainExperiment, usageLine, type ExperimentContext, type Prepared } from './experiment.ts'
import { runPipeline } from './pipeline.ts'
import { GpuLane } from '../runner/lane.ts'
import { readLocked, readProgram } from './program.ts'
import { CampaignDataError, prepareCampaignData } from '../data/campaign-data.ts'
import { withSwarm } from '../swarm/agent.ts'
import { WorkspacePool } from './slots.ts'
import { Spool } from './spool.ts'

export const WORKER_VERSION = '0.2.0'

export interface JoinOptions {
  url: string
  token: string
  name: string
  /** Where this worker keeps its workspaces, runs and undelivered results. */
  stateDir: string
  trainerDir: string
  /** Prepared data, shared by the loops of one machine (default: `<stateDir>/data`). */
  dataRoot?: string
  /** Environment for the trainer, e.g. CUDA_VISIBLE_DEVICES for the GPU this loop owns. */
  env?: Record<string, string>
  /** The trainer's seed; the trainer's default when absent. Also mixed into the agent's per-unit seed. */
  seed?: number
  /** Who edits train.py; chosen from the environment and `agentCmd` when absent. */
  agent?: Agent
  agentCmd?: string
  agentTimeoutSeconds?: number
  /** Prepare the next units while the current one trains (default true). */
  pipeline?: boolean
  /**
   * Most units held at once with pipelining (default 4, the coordinator's limit): the depth adapts
   * up to it, to how slow the agent is against a training run (loop/depth.ts). 2 is a fixed spare.
   */
  maxDepth?: number
  /** program.md to give the agent (default: the checkout's). */
  programFile?: string
  /**
   * Run campaign code without the bubblewrap sandbox where none can be made (`--unsafe-no-sandbox`):
   * without it, such a worker refuses to start (sandbox/choose.ts).
   */
  unsafeNoSandbox?: boolean
  /** The GPU lane's name in progress output, e.g. `gpu0`. */
  lane?: string
  /** Plain log lines; when absent, a progress bar on a terminal. */
  log?: (line: string) => void
  progress?: ProgressSink
  /** Stop after this many trained units (benchmarks, tests). */
  maxUnits?: number
  /** Pause before the first redelivery of a result; doubled per attempt (default 1 s). */
  redeliverMs?: number
  /** How long one delivery attempt may wait for the coordinator (default 30 s). */
  deliverAttemptMs?: number
  /** Longest pause between reconnection attempts (default 30 s). */
  reconnectMaxMs?: number
  signal?: AbortSignal
  /** Each report, as it is spooled. */
  onReport?: (report: Report) => void
}

export interface JoinSummary {
  units: number
  trainingSeconds: number
  heldSeconds: number
  dutyCycle: number | undefined
  /** The pipeline depth at the end, and the most units held at once. */
  depth: number
  maxHeld: number
}

type Campaign = HelloReply['campaigns'][number]

/** Preparations in flight, by cache folder: loops of one machine share the data and prepare it once. */
const preparing = new Map<string, Promise<{ fingerprint: string; dataDir: string }>>()

/**
 * `worker join`: one GPU loop. Registers with the coordinator, prepares each campaign's data with
 * the coordinator's tokenizer (so its fingerprint matches), then works through its feed: the agent
 * edits, the safety policy checks, the trainer runs without network, crashes go back to the agent,
 * results are spooled and delivered in the background. With pipelining it holds a spare unit and
 * prepares it while the current one trains.
 */
export async function joinCoordinator(o: JoinOptions): Promise<JoinSummary> {
  const ui = o.progress ?? (o.log ? plainProgress(o.log) : progressFor())
  const lane = o.lane ?? ''
  const log = (line: string) => ui.log(lane ? `[${lane}] ${line}` : line)
  const pipelined = o.pipeline ?? true
  const cap = pipelined ? Math.max(1, Math.min(LIMITS.capacity, Math.floor(o.maxDepth ?? DEFAULT_DEPTH_CAP))) : 1
  const python = await findPython()
  const hardware = await probeHardware({ python: python.path, env: { ...process.env, ...o.env } })
  const agent = o.agent ?? chooseAgent({ agentCmd: o.agentCmd, agentTimeoutSeconds: o.agentTimeoutSeconds, env: process.env, stateDir: o.stateDir, trainerDir: o.trainerDir })
  const sandbox = await chooseSandbox(python.path, { unsafeNoSandbox: o.unsafeNoSandbox })
  const program = await readProgram(o.trainerDir, o.programFile)
  log(`worker ${o.name}: ${hardware.hardwareClass}, torch ${python.torchVersion} (${python.path}); researcher: ${agent.label}; ${cap > 1 ? `pipelined, up to ${cap} units` : 'not pipelined'}; trainer: ${sandbox.how}`)

  // A trainer a killed predecessor left running would share the GPU with ours (runner/leftovers.ts).
  const leftover = (await Promise.all([0, 1].map(seat => killLeftover(seatRunDir(runDirOf(o.stateDir), seat))))).find(pid => pid !== null) ?? null
  if (leftover) log(`stopped a trainer that a previous run of this worker left running (process group ${leftover})`)
  const spool = new Spool(join(o.stateDir, 'spool'))
  const stop = new AbortController()
  const onAbort = () => stop.abort(o.signal?.reason)
  o.signal?.addEventListener('abort', onAbort, { once: true })
  let deliverer: Deliverer | null = null
  let feed: ResumableFeed | null = null
  let online = false
  const conn = connect(o.url, o.token, {
    // Said once per outage: the socket retries quietly, with growing pauses (client/connect.ts).
    onClose: () => { if (online) log('connection lost; reconnecting'); online = false; feed?.closed() },
    onOpen: () => { online = true; log(`connected to ${o.url}`); deliverer?.wake(); feed?.opened() },
    maxRetryDelayMs: o.reconnectMaxMs,
  })
  const api = conn.api
  const fingerprints: Record<string, string> = {}
  /** Campaign → the prepared data set folder the trainer reads (AUTORESEARCH_DATA). */
  const prepared = new Map<string, string>()
  const cacheDir = (campaign: string) => join(o.dataRoot ?? join(o.stateDir, 'data'), campaign)
  /** Units in this worker's hands: queued, being prepared, training or waiting to train. */
  const held = new Map<string, { unit: WorkUnit; progress: Progress | null; abort: AbortController }>()
  const queue: WorkUnit[] = []
  const duty = new DutyCycle()
  let budgetSeconds = 300
  const gauge = new DepthGauge({ cap, budgetSeconds: () => budgetSeconds })
  /** The depth the pipeline works to and the coordinator was told (heartbeats carry it). */
  let depth = gauge.depth()
  let maxHeld = 0
  let trained = 0
  const summary = (): JoinSummary => {
    const d = duty.seconds()
    return { units: trained, trainingSeconds: d.training, heldSeconds: d.held, dutyCycle: duty.ratio(), depth, maxHeld }
  }
  /** Frozen when the last unit is done, so a spare unit's wind-down does not count. */
  let final: JoinSummary | null = null

  const hello = async () => {
    const holding = [...new Set([...held.keys(), ...(await spool.list()).map(s => s.report.unitId)])].slice(0, 16)
    return api.worker.hello.mutate({ name: o.name, hardware, fingerprints, version: WORKER_VERSION, holding, agent: agent.label })
  }
  /** Campaigns whose data this worker cannot have, with why: it takes work from the others. */
  const unavailable = new Map<string, string>()
  const prepare = async (c: Campaign) => {
    if (prepared.has(c.name) || unavailable.has(c.name)) return
    const dir = cacheDir(c.name)
    const key = `${dir}\0${c.tokenizerPath ?? ''}\0${c.spec.profile}\0${JSON.stringify(c.spec.data ?? null)}`
    let job = preparing.get(key)
    if (!job) {
      job = prepareCampaignData(c, {
        python: python.path, trainerDir: o.trainerDir, cacheDir: dir, servedRoot: join(o.dataRoot ?? join(o.stateDir, 'data'), '_served'),
        httpBase: conn.httpBase, token: o.token, log, signal: o.signal,
      })
      preparing.set(key, job)
      job.catch(() => preparing.delete(key))
    }
    try {
      const p = await job
      fingerprints[c.name] = p.fingerprint
      prepared.set(c.name, p.dataDir)
      if (c.spec.fingerprint && p.fingerprint !== c.spec.fingerprint) log(`data of ${c.name} prepared, but its fingerprint ${p.fingerprint.slice(0, 12)}… is not the campaign's ${c.spec.fingerprint.slice(0, 12)}…: the coordinator will refuse it (see below)`)
    } catch (err) {
      if (!(err instanceof CampaignDataError)) throw err
      unavailable.set(c.name, err.message)
      log(`not taking work from ${c.name}: ${err.message}`)
    }
  }

  let reply: HelloReply
  try {
    reply = await hello()
  } catch (err) {
    await conn.close()
    o.signal?.removeEventListener('abort', onAbort)
    throw new Error(`the coordinator refused this worker: ${(err as Error).message}`)
  }
  for (const c of reply.campaigns) await prepare(c)
  reply = await hello()
  const workerId = reply.workerId
  for (const c of reply.campaigns) if (c.refused && !unavailable.has(c.name)) log(`not taking work from ${c.name}: ${c.refused}`)
  if (reply.campaigns.length && reply.campaigns.every(c => c.refused)) log('no campaign of this coordinator can use this worker yet (see above); it stays connected and takes work once one can')

  deliverer = new Deliverer({
    spool, log, baseMs: o.redeliverMs, attemptMs: o.deliverAttemptMs,
    send: (item, signal) => api.worker.report.mutate({ workerId: item.workerId, report: item.report }, { signal }),
  })
  deliverer.kick()

  /** Wakes every `nextUnit` waiting for the feed. */
  let waiting: (() => void)[] = []
  const wake = () => { for (const w of waiting.splice(0)) w() }
  // After a reconnect: hello with the units held, then the feed again (client/feed.ts).
  feed = new ResumableFeed({ hello, log, maxRetryMs: o.reconnectMaxMs, subscribe: () => api.worker.assignments.subscribe({ workerId, capacity: depth, fingerprints }, {
    onData: (e: AssignmentEvent) => {
      if (e.type === 'unit') {
        const mine = held.get(e.unit.id)
        if (!mine) {
          held.set(e.unit.id, { unit: e.unit, progress: null, abort: new AbortController() })
          maxHeld = Math.max(maxHeld, held.size)
          budgetSeconds = e.unit.budgetSeconds
          duty.hold(1)
          queue.push(e.unit)
        } else if (mine.unit.leaseToken !== e.unit.leaseToken) {
          // Its lease ran out while this worker still had it, and the coordinator leased it back to
          // this worker: carry on under the new lease (the report names it).
          mine.unit.leaseToken = e.unit.leaseToken
        }
        wake()
      } else if (e.type === 'bestChanged') log(`new best on ${e.campaign}: ${e.valBpb?.toFixed(6) ?? '?'} at ${e.commit.slice(0, 10)}`)
      else if (e.type === 'cancel') held.get(e.unitId)?.abort.abort(e.reason)
    },
    onError: err => log(`assignment feed error: ${err.message}`),
  }) })
  // As often as the coordinator asks: it spaces heartbeats out as more workers connect.
  let beatSeconds = reply.heartbeatSeconds ?? 5
  const beat = () => {
    // Not while the socket is down: the client would queue every beat and send them as one batch
    // on reconnect, past the coordinator's batch limit (the hello after a reconnect carries the units).
    if (!online) return
    const units = [...held.values()].map(h => ({ unitId: h.unit.id, leaseToken: h.unit.leaseToken, progress: h.progress }))
    // Results still waiting in the spool keep their leases too: a unit whose lease ran out while its
    // report could not be delivered would go to another worker, and the report be refused.
    void spool.list().catch(() => []).then(waiting => {
      for (const w of waiting) if (!held.has(w.report.unitId)) units.push({ unitId: w.report.unitId, leaseToken: w.report.leaseToken, progress: null })
      return api.worker.heartbeat.mutate({ workerId, units: units.slice(0, 8), capacity: depth })
    }).then(r => {
      for (const id of r.cancelled) held.get(id)?.abort.abort('the coordinator cancelled this unit')
      if (r.heartbeatSeconds) beatSeconds = r.heartbeatSeconds
    }, () => {})
  }
  let beating = setTimeout(function tick() {
    beat()
    beating = setTimeout(tick, beatSeconds * 1000)
  }, beatSeconds * 1000)
  // The depth follows the gauge; a change goes to the coordinator at once (it sends units up to it)
  // and to the pipeline (it fetches up to it). Checked on each measurement and every second, since
  // an agent that is still thinking already says it is slow.
  let depthChanged = () => {}
  const recheck = () => {
    const d = gauge.depth()
    if (d === depth) return
    log(`pipeline depth ${depth} -> ${d}: ${gauge.describe()}`)
    depth = d
    beat()
    depthChanged()
  }
  const rechecking = setInterval(recheck, 1000)

  const release = (id: string) => {
    if (held.delete(id)) duty.hold(-1)
  }
  const pool = new WorkspacePool(join(o.stateDir, 'workspaces'), cap)
  const ctx: ExperimentContext = {
    // The campaign's program.md and swarm memory reach the agent with each unit (swarm/agent.ts).
    agent: withSwarm(agent, {
      log,
      search: (unit, query) => api.swarm.search.query({ workerId, campaign: unit.campaign, query, parent: unit.parentCommit }),
      claim: (unit, c) => api.swarm.claim.mutate({ workerId, unitId: unit.id, leaseToken: held.get(unit.id)?.unit.leaseToken ?? '', ...c }),
    }),
    python: python.path, trainerDir: o.trainerDir, program, locked: await readLocked(o.trainerDir), sandbox: sandbox.host, runDir: runDirOf(o.stateDir),
    // On a GPU the next run starts up while this one trains (runner/lane.ts); on a CPU start-up
    // would take cores from the timed training.
    lane: hardware.gpus.length > 0 && cap > 1 ? new GpuLane() : undefined,
    env: o.env, trainerSeed: o.seed, baseSeed: o.seed, log,
    onProgress: (unit, p) => {
      const h = held.get(unit.id)
      if (h) h.progress = p
      ui.progress(lane, p)
    },
    onTrained: (seconds, budget) => duty.trained(seconds, budget),
    dutyCycle: () => duty.ratio(),
    known: (campaign, hash) => api.worker.known.query({ workerId, campaign, sourceHash: hash }),
  }

  const nextUnit = async (): Promise<WorkUnit | null> => {
    for (;;) {
      if (stop.signal.aborted) return null
      const unit = queue.shift()
      if (unit) return unit
      await new Promise<void>(resolve => {
        const done = () => { stop.signal.removeEventListener('abort', done); resolve() }
        waiting.push(done)
        stop.signal.addEventListener('abort', done, { once: true })
      })
    }
  }

  try {
    await runPipeline<WorkUnit, Prepared>({
      depth: () => depth,
      gpuSlots: ctx.lane ? 2 : 1,
      onDepthChange: f => { depthChanged = f },
      signal: stop.signal,
      next: nextUnit,
      prepare: async unit => {
        const h = held.get(unit.id)!
        if (!prepared.has(unit.campaign)) {
          reply = await hello()
          const c = reply.campaigns.find(x => x.name === unit.campaign)
          if (c) await prepare(c)
          // Never train on data other than the campaign's: the lease runs out and someone else takes it.
          if (unavailable.has(unit.campaign)) throw new Error(unavailable.get(unit.campaign))
        }
        const workspace = await pool.acquire()
        // Only units the agent edits measure the agent; a baseline or verify is ready at once.
        const timed = isCandidate(unit.kind)
        if (timed) gauge.agentStarted(unit.id)
        try {
          const p = await prepareExperiment(ctx, unit, workspace, AbortSignal.any([h.abort.signal, stop.signal]))
          if (timed) gauge.agentEnded(unit.id)
          return p
        } catch (err) {
          if (timed) gauge.agentEnded(unit.id, false)
          pool.release(workspace)
          throw err
        } finally {
          recheck()
        }
      },
      train: async p => {
        const h = held.get(p.unit.id)
        try {
          const signal = AbortSignal.any([h?.abort.signal ?? stop.signal, stop.signal])
          if (signal.aborted) return log(`${p.unit.id}: stopped before training (${String(signal.reason)})`)
          ui.start(lane, { unitId: p.unit.id, title: p.unit.hypothesis?.title ?? p.description, budgetSeconds: p.unit.budgetSeconds })
          let report: Report | null
          try {
            report = await trainExperiment(ctx, p, { cacheDir: cacheDir(p.unit.campaign), dataDir: prepared.get(p.unit.campaign) }, signal)
          } finally {
            ui.stop(lane)
          }
          if (!report) return log(`${p.unit.id}: stopped (${String(signal.reason ?? 'cancelled')})`)
          if (report.timings.runSeconds > 0) gauge.trained(report.timings.runSeconds)
          recheck()
          await deliverer!.push(workerId, report)
          o.onReport?.(report)
          trained++
          const d = duty.seconds()
          log(`${p.unit.id}: ${report.status}${report.metrics ? ` val_bpb ${report.metrics.val_bpb.toFixed(6)}` : ''}; GPU duty cycle ${((duty.ratio() ?? 0) * 100).toFixed(0)}% (${d.training.toFixed(0)}s training of ${d.held.toFixed(0)}s, depth ${depth})${usageLine(report)}`)
          if (o.maxUnits !== undefined && trained >= o.maxUnits) {
            final = summary()
            stop.abort('done')
          }
        } finally {
          pool.release(p.workspace)
          release(p.unit.id)
        }
      },
      onError: (unit, err) => {
        if (stop.signal.aborted || held.get(unit.id)?.abort.signal.aborted) log(`${unit.id}: stopped`)
        else log(`${unit.id}: failed inside the worker, left for its lease to expire: ${(err as Error).stack ?? err}`)
        release(unit.id)
      },
    })
    // A natural end (maxUnits) waits for the results to reach the coordinator; a stop keeps them
    // spooled for the next start.
    if (!o.signal?.aborted) await deliverer.idle()
  } finally {
    clearTimeout(beating)
    clearInterval(rechecking)
    feed.stop()
    await deliverer.stop()
    await conn.close()
    o.signal?.removeEventListener('abort', onAbort)
  }
  return final ?? summary()
}

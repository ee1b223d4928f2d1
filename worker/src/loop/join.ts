import { join } from 'node:path'
import { LIMITS, type AssignmentEvent, type HelloReply, type Report, type WorkUnit } from '@autoresearch-grid/shared'
import type { Agent } from '../agent/agent.ts'
import { coordinatorUrls } from '../client/connect.ts'
import { SourceCache } from '../client/sources.ts'
import { CoordinatorSession } from '../client/session.ts'
import { LaneData } from '../data/lane-data.ts'
import { DataPreparer } from '../data/preparer.ts'
import { probeHardware } from '../hardware/probe.ts'
import { withSwarm } from '../agent/with-swarm.ts'
import { plainProgress, progressFor, type ProgressSink } from '../ui/progress.ts'
import { Deliverer } from './deliver.ts'
import { DEFAULT_DEPTH_CAP, DepthGauge, LaneDepth } from './depth.ts'
import { DutyCycle } from './duty-cycle.ts'
import { runExperimentLoop, type ResultSink, type UnitSource } from './experiment-loop.ts'
import { usageLine, type ExperimentContext } from './experiment.ts'
import { HeldUnits } from './held.ts'
import { laneContext, openLane, stopLeftoverTrainer, type Lane } from './lane.ts'
import { WorkspacePool } from './slots.ts'
import { GpuLane } from '../runner/lane.ts'
import { RefusedWorkError } from '../sandbox/choose.ts'
import { diskProblem } from '../sandbox/limits.ts'
import { StartUpOverlap } from './start-up-overlap.ts'
import { Spool } from './spool.ts'
import { LoopStop } from './stop.ts'
import { IdleBackoff } from './idle-backoff.ts'

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
  /** The process's data preparations, shared by its loops so each data set is prepared once (default: this loop's own). */
  preparer?: DataPreparer
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
  /**
   * Start the next unit's trainer before the current one is done (runner/lane.ts): beside its
   * training where the next unit's code is the worker's own (its researcher's edit of the merged
   * best, or the best itself; loop/start-up-overlap.ts) and the card holds two runs, otherwise
   * beside its evaluation only. Default: with pipelining, on a GPU.
   */
  overlapStartUp?: boolean
  /** Plain log lines; when absent, a progress bar on a terminal. */
  log?: (line: string) => void
  progress?: ProgressSink
  /** Stop after this many trained units (benchmarks, tests). */
  maxUnits?: number
  /** Waits for room on the disk before each run (tests; default: the lane's floor, loop/lane.ts `untilRoomOnDisk`). */
  roomOnDisk?: ExperimentContext['roomOnDisk']
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

/**
 * `worker join`: one GPU loop. Registers with the coordinator, prepares each campaign's data with
 * the coordinator's tokenizer (so its fingerprint matches), then works through its feed with the
 * experiment loop (loop/experiment-loop.ts): the agent edits, the safety policy checks, the trainer
 * runs without network, crashes go back to the agent, results are spooled and delivered in the
 * background. With pipelining it holds spare units and prepares them while the current one trains.
 */
export async function joinCoordinator(o: JoinOptions): Promise<JoinSummary> {
  const ui = o.progress ?? (o.log ? plainProgress(o.log) : progressFor())
  const log = (line: string) => ui.log(o.lane ? `[${o.lane}] ${line}` : line)
  const pipelined = o.pipeline ?? true
  const cap = pipelined ? Math.max(1, Math.min(LIMITS.capacity, Math.floor(o.maxDepth ?? DEFAULT_DEPTH_CAP))) : 1
  const lane = await openLane(o)
  const hardware = await probeHardware({ python: lane.python.path, env: { ...process.env, ...o.env } })
  // The lane's default is 'evaluation': the next unit may be a stranger's code. The worker's own
  // code may start beside training where the card holds two runs (loop/start-up-overlap.ts).
  const gpuLane = cap > 1 && (o.overlapStartUp ?? hardware.gpus.length > 0) ? new GpuLane('evaluation') : undefined
  const overlap = gpuLane && new StartUpOverlap(hardware.gpus[0]?.memoryMb ?? 0, undefined, log)
  const overlapWords = overlap?.roomForTwo ? ', next start-up beside training (own code, while two runs fit the card) or evaluation (others\' code)' : ', next start-up beside evaluation'
  log(`worker ${o.name}: ${hardware.hardwareClass}, torch ${lane.python.torchVersion} (${lane.python.path}); researcher: ${lane.agent.label}; ${cap > 1 ? `pipelined, up to ${cap} units${gpuLane ? overlapWords : ''}` : 'not pipelined'}; trainer: ${lane.sandbox.how}`)
  const disk = lane.sandbox.host?.limits ? diskProblem(o.stateDir, lane.sandbox.host.limits.diskFloorBytes) : null
  if (disk) throw new RefusedWorkError(`refusing work: ${disk}`)
  await stopLeftoverTrainer(lane, log)

  const duty = new DutyCycle()
  const held = new HeldUnits(duty)
  const spool = new Spool(join(o.stateDir, 'spool'))
  const depth = new LaneDepth(new DepthGauge({ cap, budgetSeconds: () => held.budgetSeconds }), log)
  let sink: CoordinatorSink | null = null
  const stop = new LoopStop<JoinSummary>(o.signal, () => {
    const d = duty.seconds()
    return { units: sink?.trained ?? 0, trainingSeconds: d.training, heldSeconds: d.held, dutyCycle: duty.ratio(), depth: depth.get(), maxHeld: held.maxHeld }
  })
  const data = new LaneData({
    preparer: o.preparer ?? new DataPreparer(), root: o.dataRoot ?? join(o.stateDir, 'data'), python: lane.python.path, trainerDir: o.trainerDir,
    httpBase: coordinatorUrls(o.url).http, token: o.token, log, signal: o.signal,
  })
  let deliverer: Deliverer | null = null
  const sources = new SourceCache()
  const session = new CoordinatorSession({
    url: o.url, token: o.token, identity: { name: o.name, hardware, version: WORKER_VERSION, agent: lane.agent.label }, log, reconnectMaxMs: o.reconnectMaxMs,
    lane: {
      held: () => held.leases(),
      spooled: async () => (await spool.list()).map(s => ({ unitId: s.report.unitId, leaseToken: s.report.leaseToken, progress: null })),
      fingerprints: data.fingerprints,
      capacity: () => depth.get(),
      sources: () => sources.held(),
    },
    onOnline: () => deliverer?.wake(),
    onEvent: e => onFeedEvent(e, held, log, unit => sources.complete(unit, u => session.api.worker.unitSource.query({ workerId: session.workerId, unitId: u.id }))),
    onCancelled: (id, reason) => held.cancel(id, reason),
  })
  try {
    session.start(await greet(session, data, log))
  } catch (err) {
    await session.close()
    stop.dispose()
    throw err
  }
  deliverer = new Deliverer({
    spool, log, baseMs: o.redeliverMs, attemptMs: o.deliverAttemptMs,
    send: (item, signal) => session.api.worker.report.mutate({ workerId: item.workerId, report: item.report }, { signal }),
  })
  deliverer.kick()
  depth.onChange(() => session.beat())

  sink = coordinatorSink({ o, deliverer, session, held, duty, depth, stop, log })
  try {
    await runExperimentLoop({
      source: coordinatorSource(held, data, session, stop.signal), sink, depth, signal: stop.signal, ui, lane: o.lane ?? '', idle: new IdleBackoff({ log }),
      // The next unit may be a stranger's code: its untimed start-up could keep the GPU busy to
      // slow a run being measured (a parent's baseline, a rival's verification), so it starts only
      // when the current one has trained, beside its evaluation (runner/lane.ts, 'evaluation'
      // overlap). The worker's own code starts beside training (loop/start-up-overlap.ts).
      ctx: { ...coordinatorContext(lane, o, { held, session, duty, ui, log }), lane: gpuLane, startUpOverlap: overlap && ((unit, hash) => overlap.overlapFor(unit, hash)), onMeasured: overlap && ((unit, hash, peak) => overlap.measured(unit, hash, peak)) },
      workspaces: new WorkspacePool(join(o.stateDir, 'workspaces'), cap),
    })
    // A natural end (maxUnits) waits for the results to reach the coordinator; a stop keeps them
    // spooled for the next start.
    if (!o.signal?.aborted) await deliverer.idle()
  } finally {
    await deliverer.stop()
    await session.close()
    stop.dispose()
  }
  return stop.summary()
}

/**
 * The first hello, the data of every campaign it names, and a second hello with their
 * fingerprints: the coordinator gives work only from campaigns whose data matches.
 */
async function greet(session: CoordinatorSession, data: LaneData, log: (line: string) => void): Promise<HelloReply> {
  let reply: HelloReply
  try {
    reply = await session.hello()
  } catch (err) {
    throw new Error(`the coordinator refused this worker: ${(err as Error).message}`)
  }
  for (const c of reply.campaigns) await data.prepare(c)
  reply = await session.hello()
  for (const c of reply.campaigns) if (c.refused && !data.isUnavailable(c.name)) log(`not taking work from ${c.name}: ${c.refused}`)
  if (reply.campaigns.length && reply.campaigns.every(c => c.refused)) log('no campaign of this coordinator can use this worker yet (see above); it stays connected and takes work once one can')
  return reply
}

/** Units come without a source this worker already holds: `complete` fills it in (client/sources.ts). */
function onFeedEvent(e: AssignmentEvent, held: HeldUnits, log: (line: string) => void, complete: (unit: WorkUnit) => Promise<WorkUnit>): void {
  if (e.type === 'unit') {
    void complete(e.unit).then(unit => held.arrived(unit), err => log(`${e.unit.id}: could not get its source (${(err as Error).message}); its lease will run out`))
  }
  else if (e.type === 'bestChanged') log(`new best on ${e.campaign}: ${e.valBpb?.toFixed(6) ?? '?'} at ${e.commit.slice(0, 10)}`)
  else if (e.type === 'cancel') held.cancel(e.unitId, e.reason)
}

interface CoordinatorSink extends ResultSink {
  /** Units trained and reported so far. */
  trained: number
}

/** Reports go to the spool, which delivers them in the background; the lane stops after `maxUnits`. */
function coordinatorSink(c: { o: JoinOptions; deliverer: Deliverer; session: CoordinatorSession; held: HeldUnits; duty: DutyCycle; depth: LaneDepth; stop: LoopStop<JoinSummary>; log: (line: string) => void }): CoordinatorSink {
  const { o, duty, log } = c
  const sink: CoordinatorSink = {
    trained: 0,
    record: async (p, report) => {
      await c.deliverer.push(c.session.workerId, report)
      o.onReport?.(report)
      sink.trained++
      const d = duty.seconds()
      log(`${p.unit.id}: ${report.status}${report.metrics ? ` val_bpb ${report.metrics.val_bpb.toFixed(6)}` : ''}; GPU duty cycle ${((duty.ratio() ?? 0) * 100).toFixed(0)}% (${d.training.toFixed(0)}s training of ${d.held.toFixed(0)}s, depth ${c.depth.get()})${usageLine(report)}`)
      if (o.maxUnits !== undefined && sink.trained >= o.maxUnits) c.stop.done()
    },
    failed: (unit, err) => {
      if (c.stop.signal.aborted || c.held.cancelled(unit.id)?.aborted) log(`${unit.id}: stopped`)
      else log(`${unit.id}: failed inside the worker, left for its lease to expire: ${(err as Error).stack ?? err}`)
    },
  }
  return sink
}

/** Units from the coordinator's feed, each with its campaign's data prepared first. */
function coordinatorSource(held: HeldUnits, data: LaneData, session: CoordinatorSession, signal: AbortSignal): UnitSource {
  return {
    next: () => held.next(signal),
    ready: unit => data.ready(unit.campaign, () => session.hello()),
    cancelled: unit => held.cancelled(unit.id),
    release: unit => held.release(unit.id),
  }
}

/** The lane's experiment context, with what the coordinator adds: swarm memory, progress in heartbeats, sources already measured. */
function coordinatorContext(lane: Lane, o: JoinOptions, c: { held: HeldUnits; session: CoordinatorSession; duty: DutyCycle; ui: ProgressSink; log: (line: string) => void }) {
  const { held, session } = c
  return laneContext(lane, { ...o, duty: c.duty, log: c.log }, {
    // The campaign's program.md and swarm memory reach the agent with each unit (agent/with-swarm.ts).
    agent: withSwarm(lane.agent, {
      log: c.log,
      search: (unit, query) => session.api.swarm.search.query({ workerId: session.workerId, campaign: unit.campaign, query, parent: unit.parentCommit }),
      claim: (unit, claim) => session.api.swarm.claim.mutate({ workerId: session.workerId, unitId: unit.id, leaseToken: held.leaseToken(unit.id) ?? '', ...claim }),
    }),
    ...(o.roomOnDisk ? { roomOnDisk: o.roomOnDisk } : {}),
    park: (unit, waiting) => {
      held.park(unit.id, waiting)
      if (waiting) c.log(`${unit.id}: its lease is left to run out while the disk has no room, so another worker can take it`)
    },
    onProgress: (unit, p) => {
      held.progress(unit.id, p)
      c.ui.progress(o.lane ?? '', p)
    },
    known: (campaign, hash) => session.api.worker.known.query({ workerId: session.workerId, campaign, sourceHash: hash }),
  })
}

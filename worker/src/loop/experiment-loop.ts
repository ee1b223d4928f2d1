import { isCandidate, type Report, type WorkUnit } from '@autoresearch-grid/shared'
import type { DataPaths } from '../data/campaign-data.ts'
import type { ProgressSink } from '../ui/progress.ts'
import type { Workspace } from '../workspace/git.ts'
import type { LaneDepth } from './depth.ts'
import { prepareExperiment, trainExperiment, type ExperimentContext, type Prepared } from './experiment.ts'
import { runPipeline } from './pipeline.ts'
import type { IdleBackoff } from './idle-backoff.ts'

/**
 * The experiment loop of one GPU lane, the same for `worker join` and `worker solo`: units come
 * from a source, the agent prepares each in a workspace of its own (several at once with
 * pipelining), the trainer takes them one at a time, and every result goes to a sink.
 *
 *   join: the source is the coordinator's feed, the sink the spool that delivers reports to it;
 *   solo: the source is the local researcher (a baseline, then explorations of the best), the
 *         sink the local ratchet (a commit on the branch, a row in results.tsv).
 *
 * The loop itself does no I/O of its own: the agent, the safety check, the workspaces and the
 * measuring function all come in through `ctx` and `workspaces`, so a test can run it whole with
 * stand-ins and no process.
 */

/** Where units come from. */
export interface UnitSource {
  /** The next unit, waiting for one if need be; null ends the loop. Called only while there is room. */
  next(): Promise<WorkUnit | null>
  /**
   * Makes the unit's data ready before its agent starts, and says where the trainer reads it.
   * Throws when the unit cannot be worked on here (its campaign's data cannot be had).
   */
  ready(unit: WorkUnit): Promise<DataPaths>
  /** Aborts when this unit is cancelled; undefined where nobody cancels units. */
  cancelled(unit: WorkUnit): AbortSignal | undefined
  /** The unit left the loop's hands: reported, failed or stopped. */
  release(unit: WorkUnit): void
}

/** Where results go. */
export interface ResultSink {
  /** A last look before training: solo carries a candidate over to a best that moved meanwhile. */
  beforeTraining?(p: Prepared, signal: AbortSignal): Promise<Prepared>
  record(p: Prepared, report: Report): Promise<void>
  /** A unit failed inside the worker (a crashed run is a result, not a failure). */
  failed(unit: WorkUnit, err: unknown): void
}

export interface Workspaces {
  acquire(): Promise<Workspace>
  release(w: Workspace): void
}

export interface ExperimentLoopOptions {
  source: UnitSource
  sink: ResultSink
  ctx: ExperimentContext
  workspaces: Workspaces
  /** Units in hand at once; its gauge is fed the agent's and the trainer's times. */
  depth: LaneDepth
  /** `arrival` trains units in the order they came (solo: the baseline first); default: ready first. */
  order?: 'ready' | 'arrival'
  /** Ends the loop; units still being prepared are not trained. */
  signal: AbortSignal
  ui: ProgressSink
  /** The GPU lane's name in progress output ('' for the only one). */
  lane: string
  /** Holds the researcher back on a parent that gave it nothing to train (loop/idle-backoff.ts); absent: never. */
  idle?: IdleBackoff
}

interface InHand {
  p: Prepared
  data: DataPaths
}

export async function runExperimentLoop(o: ExperimentLoopOptions): Promise<void> {
  const rechecking = setInterval(() => o.depth.recheck(), 1000)
  try {
    await runPipeline<WorkUnit, InHand>({
      depth: () => o.depth.get(),
      onDepthChange: f => o.depth.onChange(f),
      order: o.order,
      // With a GPU lane (runner/lane.ts) the next unit starts up while the current one trains.
      gpuSlots: o.ctx.lane ? 2 : 1,
      signal: o.signal,
      next: () => (o.signal.aborted ? Promise.resolve(null) : o.source.next()),
      prepare: unit => prepare(o, unit),
      train: entry => train(o, entry),
      onError: (unit, err) => {
        o.sink.failed(unit, err)
        o.source.release(unit)
      },
    })
  } finally {
    clearInterval(rechecking)
  }
}

/** The unit's own cancellation and the loop's stop, as one signal. */
function signalFor(o: ExperimentLoopOptions, unit: WorkUnit): AbortSignal {
  const own = o.source.cancelled(unit)
  return own ? AbortSignal.any([own, o.signal]) : o.signal
}

/** The agent's phase: data ready, a workspace, the agent's candidate, the safety check. */
async function prepare(o: ExperimentLoopOptions, unit: WorkUnit): Promise<InHand> {
  const data = await o.source.ready(unit)
  const workspace = await o.workspaces.acquire()
  // Only units the agent edits measure the agent; a baseline or verify is ready at once.
  const timed = isCandidate(unit.kind)
  if (timed) await o.idle?.wait(unit, signalFor(o, unit))
  if (timed) o.depth.gauge.agentStarted(unit.id)
  try {
    const p = await prepareExperiment(o.ctx, unit, workspace, signalFor(o, unit))
    if (timed) o.depth.gauge.agentEnded(unit.id)
    return { p, data }
  } catch (err) {
    if (timed) o.depth.gauge.agentEnded(unit.id, false)
    o.workspaces.release(workspace)
    throw err
  } finally {
    o.depth.recheck()
  }
}

/** The GPU's phase: train (crashes go back to the agent), then the result to the sink. */
async function train(o: ExperimentLoopOptions, { p: prepared, data }: InHand): Promise<void> {
  let p = prepared
  const { unit } = p
  const signal = signalFor(o, unit)
  try {
    if (signal.aborted) return o.ctx.log(`${unit.id}: stopped before training (${String(signal.reason)})`)
    p = (await o.sink.beforeTraining?.(p, signal)) ?? p
    o.ui.start(o.lane, { unitId: unit.id, title: unit.hypothesis?.title ?? p.description, budgetSeconds: unit.budgetSeconds })
    let report: Report | null
    try {
      report = await trainExperiment(o.ctx, p, data, signal)
    } finally {
      o.ui.stop(o.lane)
    }
    if (!report) return o.ctx.log(`${unit.id}: stopped (${String(signal.reason ?? 'cancelled')})`)
    if (report.timings.runSeconds > 0) o.depth.gauge.trained(report.timings.runSeconds)
    o.depth.recheck()
    o.idle?.note(unit, report)
    await o.sink.record(p, report)
  } finally {
    o.workspaces.release(p.workspace)
    o.source.release(unit)
  }
}

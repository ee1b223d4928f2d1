import { existsSync } from 'node:fs'
import { join } from 'node:path'
import type { Metrics, TrainingSummary } from '@autoresearch-grid/shared'
import { INSIDE, type HostLayout, type Mount } from '../sandbox/bwrap.ts'
import { cacheForRun, compileBytecode, promoteToTrusted, type RunCache } from './compile-cache.ts'
import { runEvaluation, type Evaluation, type EvaluateOptions, type EvaluationOutcome } from './evaluation.ts'
import { clockLimits, describeOver, type ClockLimits } from './clock.ts'
import { openGate } from './gate.ts'
import { GpuLane, type Overlap, type Ticket } from './lane.ts'
import { runTrainer, stoppedPastLimit, type RunTrainerOptions } from './trainer.ts'
import { emptyRunDir } from './run-dir.ts'

/**
 * One experiment's number, measured so that the candidate cannot bend it (DESIGN §11, docs/SECURITY.md):
 *   1. train.py trains in a sandbox that holds the training split only, handed over when it asks
 *      for it; the worker's clock runs from then to the saved weights (safetensors), and stops and
 *      rejects a run past budget + slack (clock.ts, gate.ts);
 *   2. the trusted evaluator (trainer/evaluate.py, ours) scores those weights on the validation
 *      split, running the candidate's model in two fresh sandboxes that see inputs only, and
 *      probes that the model does not look ahead.
 * val_bpb is the evaluator's; time is the worker's; the rest of the summary is the trainer's own
 * account (shown, never compared).
 */

/** The trainer's own options (runner/trainer.ts) and what measuring adds to them. */
export interface MeasureOptions extends Pick<RunTrainerOptions, 'python' | 'runDir' | 'budgetSeconds' | 'profile' | 'seed' | 'cacheDir' | 'dataDir' | 'extraEnv' | 'signal' | 'onProgress'> {
  /** The worker's trainer folder: the locked prepare.py and the evaluator come from here. */
  trainerDir: string
  /** The bubblewrap host layout; null runs everything unsandboxed (only with the volunteer's consent). */
  sandbox: HostLayout | null
  /** Hash of the editable files: the compile cache this run may write (compile-cache.ts). */
  sourceHash: string
  /** The code is the campaign's best (a baseline): its compile cache entries may be shared. */
  trustedCode?: boolean
  /** The worker's clock (clock.ts); the profile's limits by default. */
  limits?: ClockLimits
  /**
   * The GPU's turn (lane.ts), shared by the runs of one GPU: held from go to the end of the
   * evaluation, so a run may start up while another trains. Unset: a lane of its own.
   */
  lane?: GpuLane
  /**
   * What this run's start-up may overlap in the lane (lane.ts): 'training' only for code the worker
   * vouches for (loop/start-up-overlap.ts). The lane's own by default.
   */
  overlap?: Overlap
  /** Called when the run gets its turn and its data (the clock starts) and when its turn ends. */
  onTraining?: (running: boolean) => void
  /** Puts the run folder back as it was staged, before a run that must start again does (lane.ts). */
  restage?: () => Promise<void>
  /**
   * Start the interpreter before the run may start up (trainer/warm_start.py: it imports torch while
   * another run still trains, and runs no campaign code before the turn). Default: on the gpu
   * profile, where the overlap saves seconds of every experiment; on a CPU the import would take
   * cores from the timed run beside it.
   */
  warmStart?: boolean
}

/** The warm-start script in the worker's trainer folder (trainer/warm_start.py). */
const WARM_START = 'warm_start.py'

export type MeasureStatus = 'ok' | 'crash' | 'rejected-measurement' | 'aborted'

export interface Measurement {
  status: MeasureStatus
  metrics: Metrics | null
  /** Why it crashed or was rejected, in words a maintainer can read; null when ok. */
  error: string | null
  logTail: string
  /** Seconds of training plus evaluation, by the worker's clock. */
  runSeconds: number
  /** go to SAVED by the worker's clock (clock.ts): what the run trained. */
  trainSeconds: number
  /** Launch to READY: start-up, off the clock (and, with a shared lane, overlapped with another run). */
  startupSeconds: number
  evaluation: Evaluation | null
}

/** Pure: the numbers the ratchet compares, from the evaluator, the worker's clock and the trainer. */
export function composeMetrics(summary: TrainingSummary, evaluation: Evaluation, trainSeconds: number, runSeconds: number): Metrics {
  return {
    ...summary,
    val_bpb: evaluation.val_bpb,
    training_seconds: Math.min(summary.training_seconds, Math.round(trainSeconds * 10) / 10),
    total_seconds: Math.round(runSeconds * 10) / 10,
  }
}

function trainingSandbox(o: MeasureOptions, host: HostLayout, gateDir: string | null, bytecode: string | undefined, warm: boolean, cache: RunCache | null) {
  const mounts: Mount[] = [{ host: o.runDir, inside: INSIDE.run, writable: true }]
  if (warm) mounts.push({ host: join(o.trainerDir, WARM_START), inside: `${INSIDE.harness}/${WARM_START}` })
  if (gateDir) mounts.push({ host: gateDir, inside: INSIDE.data })
  const env: Record<string, string> = { AUTORESEARCH_DATA: INSIDE.data, AUTORESEARCH_CACHE: INSIDE.cache }
  if (cache) {
    mounts.push({ host: cache.dir, inside: `${INSIDE.cache}/compile`, writable: true })
    env.TORCHINDUCTOR_CACHE_DIR = `${INSIDE.cache}/compile/inductor`
    env.TRITON_CACHE_DIR = `${INSIDE.cache}/compile/triton`
  }
  if (bytecode) {
    mounts.push({ host: bytecode, inside: INSIDE.pycache })
    env.PYTHONPYCACHEPREFIX = INSIDE.pycache
  }
  return { host, mounts, env }
}

function evaluateWith(o: MeasureOptions, limits: ClockLimits, bytecode: string | undefined, checkpointReady?: Promise<boolean>): EvaluateOptions {
  return {
    python: o.python, trainerDir: o.trainerDir, runDir: o.runDir, dataDir: o.dataDir, cacheDir: o.cacheDir, profile: o.profile,
    extraEnv: o.extraEnv, sandbox: o.sandbox, bytecode, signal: o.signal, checkpointReady,
    // Started early, it also waits out the training: its clock allows for that.
    timeoutSeconds: Math.max(300, o.budgetSeconds) + (checkpointReady ? limits.budgetSeconds + limits.slackSeconds : 0),
  }
}

/**
 * The GPU's turn for one run and, on a GPU, the evaluator started when the turn begins: its model
 * servers start up (imports, CUDA) while training runs, so only loading the weights and the
 * evaluation itself come after it. Not on a CPU: there the same start-up would take cores from the
 * timed training.
 */
class Turn {
  /** Taken at launch: turns go in launch order (lane.ts). */
  readonly ticket: Ticket
  private held = false
  private readonly waiting = new AbortController()
  private trained: (ok: boolean) => void = () => {}
  early: Promise<EvaluationOutcome> | null = null
  /** It started beside another run's turn in a lane that evicts ('evaluation' overlap, lane.ts). */
  private besideAtStart = false

  constructor(private readonly o: MeasureOptions, private readonly limits: ClockLimits, private readonly bytecode: string | undefined, lane: GpuLane) {
    this.ticket = lane.ticket(o.overlap)
  }

  /** Waits until the run's process may start (lane.ts, `overlap`); `alone`: with no other run in line. */
  async start(alone = false): Promise<void> {
    await this.ticket.start(this.o.signal, alone)
    this.besideAtStart = this.ticket.besideAnother
  }

  /** It started up beside another run: its turn, in a lane that evicts, or any other run's process (`Ticket.startupCrowded`). */
  get startedBeside(): boolean {
    return this.besideAtStart || this.ticket.startupCrowded
  }

  get evicted(): boolean {
    return this.ticket.evicted.aborted
  }

  /** The caller's stop, or the lane's eviction. */
  get signal(): AbortSignal {
    return this.o.signal ? AbortSignal.any([this.o.signal, this.ticket.evicted]) : this.ticket.evicted
  }

  /** The turn begins (or, for a run trained again, goes on: see `again`), and the early evaluator with it. */
  async begin(): Promise<void> {
    if (!this.held) {
      await this.ticket.acquire(AbortSignal.any([this.waiting.signal, this.signal]))
      this.held = true
      this.o.onTraining?.(true)
    }
    if (this.o.profile !== 'gpu') return
    const ready = new Promise<boolean>(resolve => { this.trained = resolve })
    this.early = runEvaluation(evaluateWith(this.o, this.limits, this.bytecode, ready))
  }

  /** Training is over: the early evaluator measures (ok) or stops. */
  trainingEnded(ok: boolean): void {
    this.ticket.processEnded()
    this.ticket.trainingEnded()
    this.waiting.abort(new Error('the run ended before its turn'))
    this.trained(ok)
  }

  /** The training failed and will run again in this same turn: the early evaluator stops. */
  async again(): Promise<void> {
    this.trained(false)
    await this.early
    this.early = null
  }

  evaluate(): Promise<EvaluationOutcome> {
    return this.early ?? this.evaluateAlone()
  }

  /** Evaluates afresh (after the runs started beside it were evicted). */
  async evaluateAlone(): Promise<EvaluationOutcome> {
    return runEvaluation(evaluateWith(this.o, this.limits, this.bytecode))
  }

  /** Passes the GPU on (or gives up the place in line); the run no longer trains. */
  end(): void {
    this.ticket.leave()
    if (!this.held) return
    this.held = false
    this.o.onTraining?.(false)
  }
}

type TrainerOutcome = Awaited<ReturnType<typeof runTrainer>>

/** Pure: what training alone says about the run, or null when it may go on to evaluation. */
export function judgeTraining(train: TrainerOutcome, limits: ClockLimits, aborted: boolean): { status: MeasureStatus; error: string | null } | null {
  if (train.aborted || aborted) return { status: 'aborted', error: train.error }
  if (train.clock?.over) {
    return { status: train.clock.over === 'budget' ? 'rejected-measurement' : 'crash', error: describeOver(train.clock.over, limits) }
  }
  if (!train.summary) return { status: 'crash', error: train.error }
  if (train.clock?.trainingSeconds == null) {
    // A summary that claims training the run never had the data for is a forged claim, not a crash.
    if (train.summary.training_seconds > 0) {
      return { status: 'rejected-measurement', error: `the trainer claims ${train.summary.training_seconds}s of training, but it never asked for its training data (prepare.make_loader / Data.tokens("train")): nothing was trained by the worker's clock` }
    }
    return { status: 'crash', error: 'train.py never asked for its training data (prepare.make_loader / Data.tokens("train")): nothing was trained by the worker\'s clock' }
  }
  if (train.summary.training_seconds > train.clock.trainingSeconds + 1) {
    return { status: 'rejected-measurement', error: `the trainer claims ${train.summary.training_seconds}s of training, but it had its data for ${train.clock.trainingSeconds.toFixed(1)}s by the worker's clock` }
  }
  return null
}

export async function trainAndMeasure(o: MeasureOptions): Promise<Measurement> {
  const limits = o.limits ?? clockLimits(o.profile, o.budgetSeconds)
  const bytecode = o.profile === 'gpu' && o.cacheDir ? await compileBytecode(o.python, o.cacheDir) : undefined
  let gate = o.dataDir ? await openGate(o.dataDir, o.runDir) : null
  const lane = o.lane ?? new GpuLane()
  let turn = new Turn(o, limits, bytecode, lane)
  try {
    const warm = (o.warmStart ?? o.profile === 'gpu') && existsSync(join(o.trainerDir, WARM_START))
    // Each training gets its own copy of the source's compile cache, and leaves in it only what it
    // wrote before go (compile-cache.ts, cacheForRun). Its names are frozen as soon as the run asks
    // for its data, before it waits for its turn on the GPU: the links are made while another run
    // trains, not on the GPU's time, and the run writes nothing that counts while it waits.
    const launch = async (t: Turn, when?: Promise<boolean>) => {
      const cache = o.sandbox && o.cacheDir ? await cacheForRun(o.cacheDir, o.sourceHash) : null
      const sandbox = o.sandbox ? trainingSandbox(o, o.sandbox, gate?.dir ?? null, bytecode, warm, cache) : undefined
      let keep = true
      try {
        const r = await runTrainer({
          python: o.python, runDir: o.runDir, budgetSeconds: o.budgetSeconds, profile: o.profile, seed: o.seed,
          cacheDir: o.cacheDir, dataDir: gate?.dir ?? o.dataDir, extraEnv: o.extraEnv, signal: t.signal, onProgress: o.onProgress,
          clock: { limits, beforeGo: async () => { await cache?.atGo(); await t.begin() }, release: async () => { await gate?.release() } },
          sandbox, warmStart: when && { script: sandbox ? `${INSIDE.harness}/${WARM_START}` : join(o.trainerDir, WARM_START), when },
        })
        // Stopped past a limit (it filled the disk, say): what it wrote goes at once, not at the next
        // run in this folder, so a run beside it or after it does not start on a disk it filled.
        if (stoppedPastLimit(r)) {
          keep = false
          await emptyRunDir(o.runDir)
        }
        return r
      } finally {
        await cache?.close(keep)
      }
    }
    let notes = ''
    const started = turn.start().then(() => true, () => false)
    // Warm: the interpreter is up (torch imported) before the turn; train.py itself starts with it.
    if (!warm && !(await started)) return stoppedBeforeStart(o)
    let train = await launch(turn, warm ? started : undefined)
    if (!(await started)) return stoppedBeforeStart(o)
    // A start-up beside another run (its evaluation, its training, or its start-up: lane.ts) that was
    // evicted, or that failed before it got its data, is not held against the run: it starts again,
    // alone. Measured on an 80 GB card: a warm-up beside another run's start-up or training can fail
    // for memory, and it was held against the explore (its edit given up, the agent asked again).
    const restart = restartReason(turn, train, o.signal)
    if (restart) {
      turn.trainingEnded(false)
      turn.end()
      turn = new Turn(o, limits, bytecode, lane)
      if (!(await turn.start(true).then(() => true, () => false))) return stoppedBeforeStart(o)
      await o.restage?.()
      notes = `(started again with the GPU to itself: ${restart})\n`
      train = await launch(turn)
    }
    let verdict = judgeTraining(train, limits, o.signal?.aborted ?? false)
    if (verdict?.status === 'crash' && lane.evicts && turn.ticket.crowded) {
      // Its training failed while another run started up beside it (a start-up of the worker's own
      // code may overlap training: lane.ts): it may have failed for want of the GPU's memory, taken
      // by that neighbour. Not held against the run, which may be a rival's verification: the
      // neighbours are evicted and it trains again in the same turn, with the GPU to itself and a
      // freshly closed data gate (the training split is handed over again only when it asks).
      // Once: a run that crashes by its own fault crashes again, alone, and that second run (a
      // start-up and up to a budget) is the price of never failing a run for its neighbour.
      const evicted = await lane.evictGuests(turn.ticket)
      await turn.again()
      await gate?.remove()
      gate = o.dataDir ? await openGate(o.dataDir, o.runDir) : null
      await o.restage?.()
      notes += `(its training failed while ${evicted ? `${evicted} run(s)` : 'a run'} started up beside it, and ran again with the GPU to itself: ${verdict.error})\n`
      train = await launch(turn)
      verdict = judgeTraining(train, limits, o.signal?.aborted ?? false)
    }
    const trainSeconds = train.clock?.trainingSeconds ?? 0
    const result = (status: MeasureStatus, error: string | null, extra: Partial<Measurement> = {}): Measurement => ({
      status, error, metrics: null, logTail: `${notes}${train.logTail}`, runSeconds: trainSeconds, trainSeconds, startupSeconds: train.clock?.startupSeconds ?? train.runSeconds, evaluation: null, ...extra,
    })
    turn.trainingEnded(verdict === null)
    if (verdict) {
      await turn.early
      return result(verdict.status, verdict.error)
    }
    const afterTraining = performance.now()
    let evaluated = await turn.evaluate()
    if (!evaluated.evaluation && !evaluated.aborted && !o.signal?.aborted) {
      // It may have failed for want of the GPU's memory, taken by a run starting up beside it.
      const evicted = await lane.evictGuests(turn.ticket)
      if (evicted) {
        notes += `(the evaluation failed while ${evicted} run(s) started up beside it, and was redone with the GPU to itself: ${evaluated.error})\n`
        evaluated = await turn.evaluateAlone()
      }
    }
    const runSeconds = trainSeconds + (performance.now() - afterTraining) / 1000
    const extra = { logTail: `${notes}${train.logTail}\n${evaluated.logTail}`.trim(), runSeconds, evaluation: evaluated.evaluation }
    if (evaluated.aborted || o.signal?.aborted) return result('aborted', evaluated.error, extra)
    if (!evaluated.evaluation) return result('crash', `evaluation failed: ${evaluated.error}`, extra)
    if (evaluated.evaluation.rejection) return result('rejected-measurement', evaluated.evaluation.rejection, extra)
    if (o.trustedCode && o.cacheDir && o.sandbox) await promoteToTrusted(o.cacheDir, o.sourceHash)
    return result('ok', null, { ...extra, metrics: composeMetrics(train.summary!, evaluated.evaluation, trainSeconds, runSeconds) })
  } finally {
    turn.end()
    await gate?.remove()
  }
}

function stoppedBeforeStart(o: MeasureOptions): Measurement {
  const why = o.signal?.reason instanceof Error ? o.signal.reason.message : 'stopped'
  return { status: 'aborted', error: `aborted before it started: ${why}`, metrics: null, logTail: '', runSeconds: 0, trainSeconds: 0, startupSeconds: 0, evaluation: null }
}

/** Pure: why a run that started up beside another run starts again, or null. */
export function restartReason(turn: { startedBeside: boolean; evicted: boolean }, train: TrainerOutcome, signal?: AbortSignal): string | null {
  if (!turn.startedBeside || signal?.aborted || train.clock?.trainingSeconds != null) return null
  if (turn.evicted) return 'the run before it needed the GPU to redo its evaluation'
  if (!train.summary && !train.aborted) return `its start-up failed beside another run: ${train.error ?? 'no summary'}`
  return null
}

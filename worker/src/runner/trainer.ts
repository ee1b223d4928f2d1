import { execa } from 'execa'
import { join } from 'node:path'
import { parseProgressLine, parseTrainingSummary, type Profile, type Progress, type TrainingSummary } from '@autoresearch-grid/shared'
import { LineSplitter, type Line } from './lines.ts'
import { OutputCollector } from './output.ts'
import { groupAlive, signalGroup, trackGroup } from './process-group.ts'
import { absoluteEntries, trainerEnvironment } from './env.ts'
import { LAUNCH_FAILED, launched, LIMIT_STOP, type LaunchLimits } from './launcher.ts'
import { forgetGroup, recordGroup } from './leftovers.ts'
import { markerOf, readClock, type ClockLimits, type ClockReading, type ClockTimes, type Marker } from './clock.ts'
import { bwrapCommand, INSIDE, sandboxEnvironment, type HostLayout, type Mount } from '../sandbox/bwrap.ts'
import { ensureSeccompFiles } from '../sandbox/host.ts'
import { removeDeadRunCgroupsSoon } from '../sandbox/limits.ts'

/** A run inside the sandbox: its mounts and its whole environment (nothing else passes). */
export interface SandboxedRun {
  host: HostLayout
  /** Must include the run folder, mounted writable at INSIDE.run (the working directory). */
  mounts: readonly Mount[]
  /** Inside paths that replace the host's in the trainer's environment (AUTORESEARCH_DATA, caches). */
  env: Record<string, string>
}

export interface RunTrainerOptions {
  /** The Python with torch (see `findPython` in @autoresearch-grid/trainer). */
  python: string
  /**
   * Directory holding `train.py` and its locked `prepare.py` (see `run-dir.ts`). While the trainer
   * runs, `<runDir>.pid` records its process group (leftovers.ts): one trainer per run folder.
   */
  runDir: string
  /** Script to run inside `runDir`. */
  script?: string
  /**
   * The whole command instead of `[python, script]` (the evaluator runs this way, with its flags);
   * then no summary is expected: read the output from `logTail`.
   */
  argv?: readonly string[]
  budgetSeconds: number
  profile: Profile
  seed?: number
  /** `AUTORESEARCH_CACHE`: where `prepare.py` put the data. */
  cacheDir?: string
  /** `AUTORESEARCH_DATA`: the prepared data set to train on (`ensurePrepared().dataDir`). */
  dataDir?: string
  /**
   * More environment (e.g. `CUDA_VISIBLE_DEVICES`); the named options above win over it. The
   * worker's own environment reaches the trainer only through `trainerEnvironment` (no secrets).
   */
  extraEnv?: Record<string, string>
  /** Kill the run after this long; defaults to twice the budget plus two minutes of start-up. */
  hardTimeoutSeconds?: number
  /** After SIGTERM, how long the group gets to exit before SIGKILL. */
  killGraceSeconds?: number
  /**
   * Command prefix the trainer runs under where there is no sandbox (tests). The group is still the
   * runner's to kill.
   */
  wrap?: readonly string[]
  /**
   * Unsandboxed, the cgroups the launcher puts the run in (sandbox/limits.ts): the evaluator's,
   * whose model servers are sandboxes it starts. A sandboxed run takes its host's.
   */
  limits?: LaunchLimits
  /**
   * Run inside the bubblewrap sandbox (sandbox/bwrap.ts): the environment above is not used, the
   * sandbox's is, and `runDir` is reached through its mount. Killing the group kills bwrap, and
   * with it the sandbox's PID namespace: nothing the trainer started survives.
   */
  sandbox?: SandboxedRun
  /**
   * The process reads its standard input: once this settles, a string is written to it (and the
   * input closed), null stops the run. Unset, standard input is closed from the start.
   */
  release?: Promise<string | null>
  /**
   * Starts the interpreter before the run's turn (trainer/warm_start.py, the worker's own code):
   * `script` is that file as the process sees it. It imports torch, then runs train.py once `when`
   * settles true; false stops it. The start-up limit and the clock's launch time count from then.
   */
  warmStart?: { script: string; when: Promise<boolean> }
  /**
   * The worker's clock (clock.ts): the training split is handed over (`release`) when train.py asks
   * for it, after `beforeGo` (waiting for the GPU's turn); the run ends when its weights are saved.
   * Replaces `hardTimeoutSeconds` with the clock's limits. Requires `dataDir` to be the gate.
   */
  clock?: { limits: ClockLimits; release(): Promise<void>; beforeGo?(): Promise<void> }
  onProgress?: (progress: Progress) => void
  onLine?: (line: string) => void
  /**
   * The process's working folder; `runDir` by default. The evaluator's is the worker's trainer
   * folder: it starts after training wrote the run folder, and relative lookups (an empty entry of
   * PATH or LD_LIBRARY_PATH) land in the working folder.
   */
  cwd?: string
  signal?: AbortSignal
}

export interface TrainerResult {
  /** null when the process was killed by a signal or never started. */
  exitCode: number | null
  /** The signal that ended it, e.g. `SIGKILL`. */
  signal: string | null
  /**
   * train.py's own account of its run (no val_bpb: the evaluator measures that). Set only for a
   * clean exit with a complete summary.
   */
  summary: TrainingSummary | null
  /** What went wrong, in words; null exactly when `summary` is set (or, with `argv`, on exit 0). */
  error: string | null
  /** The last 50 lines of stdout and stderr, interleaved as they came, within `LIMITS.logTailBytes`. */
  logTail: string
  runSeconds: number
  timedOut: boolean
  aborted: boolean
  /** What the worker's clock read, when the run had one. */
  clock: ClockReading | null
}

const PYTHON_ERROR = /^\s*([A-Za-z_][\w.]*(Error|Exception|Interrupt)|AssertionError)\b.*/

/** The last `SomeError: message` line, which usually says more than the exit code. */
function lastPythonError(logTail: string): string | null {
  const lines = logTail.split('\n').filter(l => PYTHON_ERROR.test(l))
  return lines.length ? lines[lines.length - 1].trim() : null
}

interface Outcome {
  exitCode: number | null
  signal: string | null
  timedOut: boolean
  aborted: boolean
  abortReason: string
  spawnError: string | null
  /** The worker ended the run itself when the weights were saved (the clock's SAVED). */
  endedAtSave: boolean
  hardTimeoutSeconds: number
  budgetSeconds: number
  script: string
}

/** Pure: whether the launcher stopped the run past a limit of the sandbox (a task bomb, a full disk). */
export const stoppedPastLimit = (r: Pick<TrainerResult, 'signal' | 'logTail'>): boolean => r.signal === 'SIGKILL' && LIMIT_STOP.test(r.logTail)

/** Pure: turns how the process ended and what it printed into the training summary or an error. */
export function judgeRun(outcome: Outcome, summaryText: string | null, logTail: string, clock: ClockReading | null = null): { summary: TrainingSummary | null; error: string | null } {
  const o = outcome
  if (o.spawnError) return { summary: null, error: `could not start the trainer: ${o.spawnError}` }
  if (o.timedOut && clock?.over) return { summary: null, error: `stopped by the worker's clock: ${o.script} ran past its limit (${clock.over === 'startup' ? 'start-up' : 'budget'})` }
  if (o.timedOut) return { summary: null, error: `killed by the worker's clock after ${o.hardTimeoutSeconds}s (budget ${o.budgetSeconds}s): ${o.script} did not finish in time` }
  if (o.aborted) return { summary: null, error: `aborted: ${o.abortReason}` }
  const cause = lastPythonError(logTail)
  if (o.endedAtSave) return summaryOf(summaryText, o.script, `${o.script} saved its weights but printed no summary before saving (the run ends at prepare.save_model)`)
  const limit = o.signal === 'SIGKILL' ? LIMIT_STOP.exec(logTail) : null
  if (limit) return { summary: null, error: `${o.script} was stopped past a limit of the sandbox: ${limit[1]}` }
  if (o.signal) return { summary: null, error: `${o.script} was killed by ${o.signal}${o.signal === 'SIGKILL' ? ' (out of memory?)' : ''}${cause ? `; last error: ${cause}` : ''}` }
  if (o.exitCode !== 0) return { summary: null, error: `${o.script} exited with code ${o.exitCode}${cause ? `: ${cause}` : ''}` }
  return summaryOf(summaryText, o.script, null)
}

function summaryOf(summaryText: string | null, script: string, missing: string | null): { summary: TrainingSummary | null; error: string | null } {
  if (summaryText === null) return { summary: null, error: missing }
  try {
    return { summary: parseTrainingSummary(summaryText), error: null }
  } catch (err) {
    return { summary: null, error: `${script} ended cleanly but its summary is unusable: ${(err as Error).message}` }
  }
}

/** The trainer's environment as seen inside the sandbox: host paths dropped or replaced. */
function insideEnvironment(env: Record<string, string>, inside: Record<string, string>): Record<string, string> {
  const { AUTORESEARCH_CACHE, AUTORESEARCH_DATA, PYTHONPYCACHEPREFIX, TORCHINDUCTOR_CACHE_DIR, TRITON_CACHE_DIR, ...rest } = env
  return sandboxEnvironment(rest, inside)
}

/** The command line and environment of one run: through the launcher, sandboxed or not. */
function trainerCommand(options: RunTrainerOptions, script: string): { command: string[]; env: Record<string, string> } {
  const env: Record<string, string> = {
    ...trainerEnvironment(process.env),
    ...options.extraEnv,
    PYTHONUNBUFFERED: '1',
    AUTORESEARCH_TIME_BUDGET: String(options.budgetSeconds),
    AUTORESEARCH_PROFILE: options.profile,
  }
  if (options.seed !== undefined) env.AUTORESEARCH_SEED = String(options.seed)
  if (options.cacheDir !== undefined) env.AUTORESEARCH_CACHE = options.cacheDir
  if (options.dataDir !== undefined) env.AUTORESEARCH_DATA = options.dataDir
  if (options.clock) env.AUTORESEARCH_DATA_GATED = '1'
  // torch's bytecode kept with the compile caches. An install without it (uv compiles none by
  // default) in a site-packages the trainer may not write to compiles ~2,000 modules of torch from
  // source on every start-up: 10 s of each experiment on an H100 box (docs/TRAINER.md).
  if (options.profile === 'gpu' && options.cacheDir !== undefined) env.PYTHONPYCACHEPREFIX ??= join(options.cacheDir, 'compile', 'pycache')

  // Through the launcher, which kills the trainer's group if the worker dies (launcher.ts).
  const inner = options.argv ?? (options.warmStart ? [options.python, options.warmStart.script, script] : [options.python, script])
  const sandbox = options.sandbox
  if (!sandbox) return { command: launched(options.python, [...(options.wrap ?? []), ...inner], process.pid, options.limits), env }
  ensureSeccompFiles(sandbox.host)
  const insideEnv = insideEnvironment(env, sandbox.env)
  if (options.clock) insideEnv.AUTORESEARCH_DATA_GATED = '1'
  const writes = sandbox.mounts.filter(m => m.writable).map(m => m.host)
  const command = launched(options.python, bwrapCommand(sandbox.host, { mounts: sandbox.mounts, env: insideEnv, cwd: INSIDE.run, command: inner }), process.pid, sandbox.host.limits, writes)
  return { command, env: { PATH: absoluteEntries(process.env.PATH ?? '/usr/bin:/bin'), LANG: 'C.UTF-8' } }
}

const reasonOf = (signal: AbortSignal) => signal.reason instanceof Error ? signal.reason.message : String(signal.reason ?? 'cancelled')

/**
 * One trainer process from spawn to exit: its timers, its output, the worker's clock and how it
 * ended. `runTrainer` below is its only user.
 */
class TrainerProcess {
  readonly outcome: Outcome
  readonly output = new OutputCollector()
  readonly times: ClockTimes
  callbackError: unknown = null
  private killTimer: NodeJS.Timeout | undefined
  private limitTimer: NodeJS.Timeout | undefined
  private pgid: number | undefined
  private exited = false

  constructor(private readonly options: RunTrainerOptions, script: string, readonly hardTimeoutSeconds: number) {
    this.outcome = {
      exitCode: null, signal: null, timedOut: false, aborted: false, abortReason: '', spawnError: null, endedAtSave: false,
      hardTimeoutSeconds, budgetSeconds: options.budgetSeconds, script,
    }
    const now = performance.now()
    this.times = { launched: now, ready: null, go: null, saved: null, ended: now }
  }

  /** SIGTERM, then SIGKILL after the kill grace; `now` skips straight to SIGKILL. */
  terminate(now = false): void {
    if (this.pgid === undefined) return
    if (now) {
      signalGroup(this.pgid, 'SIGKILL')
      return
    }
    if (this.killTimer) return
    signalGroup(this.pgid, 'SIGTERM')
    this.killTimer = setTimeout(() => signalGroup(this.pgid!, 'SIGKILL'), (this.options.killGraceSeconds ?? 10) * 1000)
  }

  /** Stops the run when `seconds` pass, marking it timed out; replaces the previous limit. */
  private limit(seconds: number): void {
    clearTimeout(this.limitTimer)
    this.limitTimer = setTimeout(() => {
      this.outcome.timedOut = true
      this.terminate(true)
    }, seconds * 1000)
  }

  /** The worker's clock: READY starts the turn and hands over the data, SAVED ends the run. */
  private async onMarker(marker: Marker): Promise<void> {
    const clock = this.options.clock!
    if (marker === 'ready' && this.times.ready === null) {
      this.times.ready = performance.now()
      clearTimeout(this.limitTimer)
      // The clock starts as the data is released, not once the release is seen to be done: the run
      // may read its data as soon as the files are moved in, and a busy event loop or file-system
      // thread pool can report that seconds later. Started after, the clock said a run had its data
      // for 2.0 s that trained its honest 2 s budget in 4.2 (npm test, a run restarted beside an
      // evaluation), and the run was rejected as a forged claim. The clock must never undercount.
      let go: number
      try {
        await clock.beforeGo?.()
        if (this.exited) return // it died while waiting for its turn
        go = performance.now()
        await clock.release()
      } catch (err) {
        if (this.exited) return
        this.outcome.aborted = true
        this.outcome.abortReason = err instanceof Error ? err.message : String(err)
        this.terminate(true)
        return
      }
      this.times.go = go
      this.limit(clock.limits.budgetSeconds + clock.limits.slackSeconds - (performance.now() - go) / 1000)
    } else if (marker === 'saved' && this.times.go !== null && this.times.saved === null) {
      // Nothing the run does after saving can count: end it now, so the weights are final.
      this.times.saved = performance.now()
      this.outcome.endedAtSave = true
      clearTimeout(this.limitTimer)
      this.terminate(true)
    }
  }

  private handle(line: Line): void {
    this.output.add(line)
    if (this.callbackError) return
    const marker = this.options.clock ? markerOf(line.text) : null
    if (marker) void this.onMarker(marker)
    try {
      this.options.onLine?.(line.text)
      const progress = this.options.onProgress ? parseProgressLine(line.text) : null
      if (progress) this.options.onProgress!(progress)
    } catch (err) {
      this.callbackError = err
      this.terminate()
    }
  }

  /** Spawns the command and waits for it to end; never throws. */
  async run(command: string[], env: Record<string, string>): Promise<void> {
    const o = this.options
    const child = execa(command[0], command.slice(1), {
      cwd: o.cwd ?? o.runDir, env, extendEnv: false, detached: true, stdin: o.release || o.warmStart ? 'pipe' : 'ignore', all: true, buffer: false, reject: false,
    })
    this.pgid = child.pid
    const untrack = this.pgid === undefined ? () => {} : trackGroup(this.pgid)
    const recorded = this.pgid === undefined ? null : recordGroup(o.runDir, this.pgid).then(() => true, () => false)
    const onAbort = () => {
      this.outcome.aborted = true
      this.outcome.abortReason = reasonOf(o.signal!)
      this.terminate()
    }
    o.signal?.addEventListener('abort', onAbort, { once: true })
    const startupLimit = o.clock ? o.clock.limits.startupSeconds : this.hardTimeoutSeconds
    // A warm start is released by its `start` line. It waits for its turn with no limit of its own
    // (the caller's signal ends it): its start-up, and the limit on it, begin when it is released.
    const release = o.release ?? o.warmStart?.when.then(go => (go ? 'start\n' : null))
    release?.then(text => {
      if (this.exited) return
      if (text === null) {
        this.outcome.aborted = true
        this.outcome.abortReason = 'not needed'
        return this.terminate()
      }
      if (o.warmStart) {
        this.times.launched = performance.now()
        this.limit(startupLimit)
      }
      child.stdin?.end(text)
    }, () => this.terminate())
    child.stdin?.on('error', () => {}) // the process may be gone before we write
    if (!o.warmStart) this.limit(startupLimit)
    // Once the leader exits, whatever it left behind in its group is an orphan of a finished run;
    // killing it also closes the pipes it holds, so the output stream can end.
    child.on('exit', () => {
      if (this.pgid !== undefined && groupAlive(this.pgid)) signalGroup(this.pgid, 'SIGKILL')
    })
    const splitter = new LineSplitter()
    child.all?.setEncoding('utf8')
    child.all?.on('data', (chunk: string) => splitter.push(chunk).forEach(l => this.handle(l)))

    const result = await child
    splitter.end().forEach(l => this.handle(l))
    this.exited = true
    this.times.ended = performance.now()
    clearTimeout(this.limitTimer)
    clearTimeout(this.killTimer)
    o.signal?.removeEventListener('abort', onAbort)
    untrack()
    if (await recorded) await forgetGroup(o.runDir)
    // A launcher killed with its group (the time limit, a cancel) left its run's cgroups behind.
    const cgroups = o.sandbox?.host.limits?.cgroups ?? o.limits?.cgroups
    if (cgroups?.length && (result.signal || this.outcome.timedOut || this.outcome.aborted)) removeDeadRunCgroupsSoon(cgroups)
    this.settle(result, command[0])
  }

  private settle(result: { exitCode?: number; signal?: string; shortMessage?: string }, program: string): void {
    this.outcome.exitCode = typeof result.exitCode === 'number' ? result.exitCode : null
    this.outcome.signal = result.signal ?? null
    if (this.pgid === undefined || (result.exitCode === undefined && !result.signal)) {
      this.outcome.spawnError = result.shortMessage ?? `could not run ${program}`
    }
    const launchFailed = result.exitCode === 127 ? LAUNCH_FAILED.exec(this.output.logTail()) : null
    if (launchFailed) this.outcome.spawnError = launchFailed[1]
  }
}

/**
 * Runs `train.py` once. Never throws for anything the trainer does (crash, hang, garbage output):
 * that is reported in the result. Throws only if a callback throws, after the run is stopped.
 */
export async function runTrainer(options: RunTrainerOptions): Promise<TrainerResult> {
  const script = options.script ?? 'train.py'
  const run = new TrainerProcess(options, script, options.hardTimeoutSeconds ?? options.budgetSeconds * 2 + 120)
  if (options.signal?.aborted) {
    run.outcome.aborted = true
    run.outcome.abortReason = reasonOf(options.signal)
  } else {
    const { command, env } = trainerCommand(options, script)
    await run.run(command, env)
    if (run.callbackError) throw run.callbackError
  }
  const logTail = run.output.logTail()
  const clock = options.clock ? readClock(run.times, options.clock.limits) : null
  return {
    exitCode: run.outcome.exitCode,
    signal: run.outcome.signal,
    ...judgeRun(run.outcome, options.argv ? null : run.output.summaryText(), logTail, clock),
    logTail,
    runSeconds: (run.times.ended - run.times.launched) / 1000,
    timedOut: run.outcome.timedOut,
    aborted: run.outcome.aborted,
    clock,
  }
}

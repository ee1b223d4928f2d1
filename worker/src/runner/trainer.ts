import { execa } from 'execa'
import { join } from 'node:path'
import { parseProgressLine, parseTrainingSummary, type Profile, type Progress, type TrainingSummary } from '@autoresearch-grid/shared'
import { LineSplitter, type Line } from './lines.ts'
import { OutputCollector } from './output.ts'
import { groupAlive, signalGroup, trackGroup } from './process-group.ts'
import { trainerEnvironment } from './env.ts'
import { LAUNCH_FAILED, launched } from './launcher.ts'
import { forgetGroup, recordGroup } from './leftovers.ts'
import { bwrapCommand, INSIDE, sandboxEnvironment, type HostLayout, type Mount } from '../sandbox/bwrap.ts'

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
  onProgress?: (progress: Progress) => void
  onLine?: (line: string) => void
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
  hardTimeoutSeconds: number
  budgetSeconds: number
  script: string
}

/** Pure: turns how the process ended and what it printed into the training summary or an error. */
export function judgeRun(outcome: Outcome, summaryText: string | null, logTail: string): { summary: TrainingSummary | null; error: string | null } {
  const o = outcome
  if (o.spawnError) return { summary: null, error: `could not start the trainer: ${o.spawnError}` }
  if (o.timedOut) return { summary: null, error: `killed by the worker's clock after ${o.hardTimeoutSeconds}s (budget ${o.budgetSeconds}s): ${o.script} did not finish in time` }
  if (o.aborted) return { summary: null, error: `aborted: ${o.abortReason}` }
  const cause = lastPythonError(logTail)
  if (o.signal) return { summary: null, error: `${o.script} was killed by ${o.signal}${o.signal === 'SIGKILL' ? ' (out of memory?)' : ''}${cause ? `; last error: ${cause}` : ''}` }
  if (o.exitCode !== 0) return { summary: null, error: `${o.script} exited with code ${o.exitCode}${cause ? `: ${cause}` : ''}` }
  if (summaryText === null) return { summary: null, error: null }
  try {
    return { summary: parseTrainingSummary(summaryText), error: null }
  } catch (err) {
    return { summary: null, error: `${o.script} exited 0 but its summary is unusable: ${(err as Error).message}` }
  }
}

/** The trainer's environment as seen inside the sandbox: host paths dropped or replaced. */
function insideEnvironment(env: Record<string, string>, inside: Record<string, string>): Record<string, string> {
  const { AUTORESEARCH_CACHE, AUTORESEARCH_DATA, PYTHONPYCACHEPREFIX, TORCHINDUCTOR_CACHE_DIR, TRITON_CACHE_DIR, ...rest } = env
  return sandboxEnvironment(rest, inside)
}

/**
 * Runs `train.py` once. Never throws for anything the trainer does (crash, hang, garbage output):
 * that is reported in the result. Throws only if a callback throws, after the run is stopped.
 */
export async function runTrainer(options: RunTrainerOptions): Promise<TrainerResult> {
  const script = options.script ?? 'train.py'
  const hardTimeoutSeconds = options.hardTimeoutSeconds ?? options.budgetSeconds * 2 + 120
  const graceMs = (options.killGraceSeconds ?? 10) * 1000
  const started = performance.now()
  const output = new OutputCollector()
  const outcome: Outcome = {
    exitCode: null, signal: null, timedOut: false, aborted: false, abortReason: '', spawnError: null,
    hardTimeoutSeconds, budgetSeconds: options.budgetSeconds, script,
  }
  const finish = (): TrainerResult => ({
    exitCode: outcome.exitCode,
    signal: outcome.signal,
    ...judgeRun(outcome, options.argv ? null : output.summaryText(), output.logTail()),
    logTail: output.logTail(),
    runSeconds: (performance.now() - started) / 1000,
    timedOut: outcome.timedOut,
    aborted: outcome.aborted,
  })
  const reasonOf = (signal: AbortSignal) => signal.reason instanceof Error ? signal.reason.message : String(signal.reason ?? 'cancelled')

  if (options.signal?.aborted) {
    outcome.aborted = true
    outcome.abortReason = reasonOf(options.signal)
    return finish()
  }

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
  // torch's bytecode kept with the compile caches. An install without it (uv compiles none by
  // default) in a site-packages the trainer may not write to compiles ~2,000 modules of torch from
  // source on every start-up: 10 s of each experiment on an H100 box (docs/TRAINER.md).
  if (options.profile === 'gpu' && options.cacheDir !== undefined) env.PYTHONPYCACHEPREFIX ??= join(options.cacheDir, 'compile', 'pycache')

  // Through the launcher, which kills the trainer's group if the worker dies (launcher.ts).
  const inner = options.argv ?? [options.python, script]
  const sandbox = options.sandbox
  const command = sandbox
    ? launched(options.python, bwrapCommand(sandbox.host, { mounts: sandbox.mounts, env: insideEnvironment(env, sandbox.env), cwd: INSIDE.run, command: inner }))
    : launched(options.python, [...(options.wrap ?? []), ...inner])
  const child = execa(command[0], command.slice(1), {
    cwd: options.runDir,
    env: sandbox ? { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C.UTF-8' } : env,
    extendEnv: false,
    detached: true,
    stdin: options.release ? 'pipe' : 'ignore',
    all: true,
    buffer: false,
    reject: false,
  })

  let callbackError: unknown = null
  let killTimer: NodeJS.Timeout | undefined
  const pgid = child.pid
  const untrack = pgid === undefined ? () => {} : trackGroup(pgid)
  const recorded = pgid === undefined ? null : recordGroup(options.runDir, pgid).then(() => true, () => false)

  const terminate = () => {
    if (pgid === undefined || killTimer) return
    signalGroup(pgid, 'SIGTERM')
    killTimer = setTimeout(() => signalGroup(pgid, 'SIGKILL'), graceMs)
  }
  const onAbort = () => {
    outcome.aborted = true
    outcome.abortReason = reasonOf(options.signal!)
    terminate()
  }
  options.signal?.addEventListener('abort', onAbort, { once: true })
  options.release?.then(text => {
    if (text === null) {
      outcome.aborted = true
      outcome.abortReason = 'not needed'
      terminate()
    } else {
      child.stdin?.end(text)
    }
  }, () => terminate())
  child.stdin?.on('error', () => {}) // the process may be gone before we write
  const hardTimer = setTimeout(() => {
    outcome.timedOut = true
    terminate()
  }, hardTimeoutSeconds * 1000)

  // Once the leader exits, whatever it left behind in its group is an orphan of a finished run;
  // killing it also closes the pipes it holds, so the output stream can end.
  child.on('exit', () => {
    if (pgid !== undefined && groupAlive(pgid)) signalGroup(pgid, 'SIGKILL')
  })

  const splitter = new LineSplitter()
  const handle = (line: Line) => {
    output.add(line)
    if (callbackError) return
    try {
      options.onLine?.(line.text)
      const progress = options.onProgress ? parseProgressLine(line.text) : null
      if (progress) options.onProgress!(progress)
    } catch (err) {
      callbackError = err
      terminate()
    }
  }
  child.all?.setEncoding('utf8')
  child.all?.on('data', (chunk: string) => splitter.push(chunk).forEach(handle))

  const result = await child
  splitter.end().forEach(handle)
  clearTimeout(hardTimer)
  clearTimeout(killTimer)
  options.signal?.removeEventListener('abort', onAbort)
  untrack()
  if (await recorded) await forgetGroup(options.runDir)

  outcome.exitCode = typeof result.exitCode === 'number' ? result.exitCode : null
  outcome.signal = result.signal ?? null
  if (pgid === undefined || (result.exitCode === undefined && !result.signal)) {
    outcome.spawnError = result.shortMessage ?? `could not run ${command[0]}`
  }
  const launchFailed = result.exitCode === 127 ? LAUNCH_FAILED.exec(output.logTail()) : null
  if (launchFailed) outcome.spawnError = launchFailed[1]
  if (callbackError) throw callbackError
  return finish()
}

import { join } from 'node:path'
import type { Metrics, Profile, TrainingSummary } from '@autoresearch-grid/shared'
import { INSIDE, type HostLayout, type Mount } from '../sandbox/bwrap.ts'
import { cacheForSource, compileBytecode, promoteToTrusted } from './compile-cache.ts'
import { runEvaluation, type Evaluation } from './evaluation.ts'
import { runTrainer, type RunTrainerOptions } from './trainer.ts'

/**
 * One experiment's number, measured so that the candidate cannot bend it (DESIGN §11, docs/SECURITY.md):
 *   1. train.py trains in a sandbox that holds the training split only, and is stopped by the
 *      worker's clock at budget + start-up grace; it saves its weights (safetensors);
 *   2. the trusted evaluator (trainer/evaluate.py, ours) scores those weights on the validation
 *      split, running the candidate's model in two fresh sandboxes that see inputs only, and
 *      probes that the model does not look ahead.
 * val_bpb is the evaluator's; time is the worker's; the rest of the summary is the trainer's own
 * account (shown, never compared).
 */

/** The files of a prepared data set that training may see: never val.bin / val_docs.npy. */
export const TRAINING_FILES = ['meta.json', 'token_bytes.npy', 'tokenizer.model', 'train.bin', 'train_docs.npy'] as const

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
  /** Seconds past the budget before the worker's clock stops training (start-up and compilation). */
  graceSeconds?: number
}

export type MeasureStatus = 'ok' | 'crash' | 'rejected-measurement' | 'aborted'

export interface Measurement {
  status: MeasureStatus
  metrics: Metrics | null
  /** Why it crashed or was rejected, in words a maintainer can read; null when ok. */
  error: string | null
  logTail: string
  /** Seconds of training plus evaluation, by the worker's clock. */
  runSeconds: number
  trainSeconds: number
  evaluation: Evaluation | null
}

/** Start-up the worker's clock allows past the budget: compilation on a GPU, imports on a CPU. */
export function defaultGraceSeconds(profile: Profile, budgetSeconds: number): number {
  return profile === 'gpu' ? Math.max(90, Math.round(budgetSeconds * 0.2)) : Math.max(30, Math.round(budgetSeconds * 0.5))
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

async function trainingSandbox(o: MeasureOptions, host: HostLayout, bytecode: string | undefined) {
  const mounts: Mount[] = [{ host: o.runDir, inside: INSIDE.run, writable: true }]
  if (o.dataDir) for (const f of TRAINING_FILES) mounts.push({ host: join(o.dataDir, f), inside: `${INSIDE.data}/${f}` })
  const env: Record<string, string> = { AUTORESEARCH_DATA: INSIDE.data, AUTORESEARCH_CACHE: INSIDE.cache }
  if (o.cacheDir) {
    mounts.push({ host: await cacheForSource(o.cacheDir, o.sourceHash), inside: `${INSIDE.cache}/compile`, writable: true })
    env.TORCHINDUCTOR_CACHE_DIR = `${INSIDE.cache}/compile/inductor`
    env.TRITON_CACHE_DIR = `${INSIDE.cache}/compile/triton`
  }
  if (bytecode) {
    mounts.push({ host: bytecode, inside: INSIDE.pycache })
    env.PYTHONPYCACHEPREFIX = INSIDE.pycache
  }
  return { host, mounts, env }
}

function evaluateWith(o: MeasureOptions, bytecode: string | undefined, checkpointReady?: Promise<boolean>) {
  return {
    python: o.python, trainerDir: o.trainerDir, runDir: o.runDir, dataDir: o.dataDir, cacheDir: o.cacheDir, profile: o.profile,
    extraEnv: o.extraEnv, sandbox: o.sandbox, bytecode, signal: o.signal, checkpointReady,
    // Started early, it also waits out the training: its clock allows for that.
    timeoutSeconds: Math.max(300, o.budgetSeconds) + (checkpointReady ? o.budgetSeconds + (o.graceSeconds ?? defaultGraceSeconds(o.profile, o.budgetSeconds)) : 0),
  }
}

export async function trainAndMeasure(o: MeasureOptions): Promise<Measurement> {
  const grace = o.graceSeconds ?? defaultGraceSeconds(o.profile, o.budgetSeconds)
  const bytecode = o.profile === 'gpu' && o.cacheDir ? await compileBytecode(o.python, o.cacheDir) : undefined
  // On a GPU the evaluator and its model servers start up while training runs (imports, CUDA), so
  // only loading the weights and the evaluation itself come after it. Not on a CPU: there the same
  // start-up would take cores from the timed training.
  let trained: (ok: boolean) => void = () => {}
  const checkpointReady = o.profile === 'gpu' ? new Promise<boolean>(resolve => { trained = resolve }) : undefined
  const early = checkpointReady ? runEvaluation(evaluateWith(o, bytecode, checkpointReady)) : null
  const train = await runTrainer({
    python: o.python, runDir: o.runDir, budgetSeconds: o.budgetSeconds, profile: o.profile, seed: o.seed,
    cacheDir: o.cacheDir, dataDir: o.dataDir, extraEnv: o.extraEnv, signal: o.signal, onProgress: o.onProgress,
    hardTimeoutSeconds: o.budgetSeconds + grace,
    sandbox: o.sandbox ? await trainingSandbox(o, o.sandbox, bytecode) : undefined,
  })
  const result = (status: MeasureStatus, error: string | null, extra: Partial<Measurement> = {}): Measurement => ({
    status, error, metrics: null, logTail: train.logTail, runSeconds: train.runSeconds, trainSeconds: train.runSeconds, evaluation: null, ...extra,
  })
  const ok = !train.aborted && !o.signal?.aborted && !train.timedOut && train.summary !== null && train.summary.training_seconds <= train.runSeconds + 1
  trained(ok)
  if (!ok) await early
  if (train.aborted || o.signal?.aborted) return result('aborted', train.error)
  if (train.timedOut) {
    return result('rejected-measurement', `training did not end within its budget: the worker's clock stopped it at ${o.budgetSeconds + grace}s ` +
      `(budget ${o.budgetSeconds}s + ${grace}s for start-up and compilation); a run may not train past its budget`)
  }
  if (!train.summary) return result('crash', train.error)
  if (train.summary.training_seconds > train.runSeconds + 1) {
    return result('rejected-measurement', `the trainer claims ${train.summary.training_seconds}s of training, but it ran ${train.runSeconds.toFixed(1)}s by the worker's clock`)
  }

  const afterTraining = performance.now()
  const evaluated = await (early ?? runEvaluation(evaluateWith(o, bytecode)))
  // By the worker's clock, from the end of training: an early evaluator's start-up is not counted twice.
  const runSeconds = train.runSeconds + (performance.now() - afterTraining) / 1000
  const logTail = `${train.logTail}\n${evaluated.logTail}`.trim()
  const extra = { logTail, runSeconds, trainSeconds: train.runSeconds, evaluation: evaluated.evaluation }
  if (evaluated.aborted || o.signal?.aborted) return result('aborted', evaluated.error, extra)
  if (!evaluated.evaluation) return result('crash', `evaluation failed: ${evaluated.error}`, extra)
  if (evaluated.evaluation.rejection) return result('rejected-measurement', evaluated.evaluation.rejection, extra)
  if (o.trustedCode && o.cacheDir && o.sandbox) await promoteToTrusted(o.cacheDir, o.sourceHash)
  return result('ok', null, { ...extra, metrics: composeMetrics(train.summary, evaluated.evaluation, train.runSeconds, runSeconds) })
}

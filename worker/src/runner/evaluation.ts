import { existsSync } from 'node:fs'
import { access, constants, mkdir, mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Profile } from '@autoresearch-grid/shared'
import { bwrapCommand, INSIDE, sandboxEnvironment, type HostLayout, type Mount } from '../sandbox/bwrap.ts'
import { ensureSeccompFiles } from '../sandbox/host.ts'
import { trainerEnvironment } from './env.ts'
import { removeTree } from './remove-tree.ts'
import { runTrainer } from './trainer.ts'

/** What trainer/evaluate.py printed: the trusted measurement of one checkpoint. */
export interface Evaluation {
  val_bpb: number
  rows: number
  tokens: number
  bytes: number
  probes: number
  probe_max_delta: number
  probe_mean_at_cut: number
  /** Why the number must not count (a model that looks ahead, non-finite losses), or null. */
  rejection: string | null
  eval_seconds: number
}

export interface EvaluationOutcome {
  evaluation: Evaluation | null
  /** The model could not be evaluated (no checkpoint, it crashed, wrong output), in words. */
  error: string | null
  logTail: string
  seconds: number
  aborted: boolean
}

export interface EvaluateOptions {
  python: string
  /** The worker's own trainer folder: evaluate.py, model_server.py and prepare.py come from here. */
  trainerDir: string
  /** The run folder training wrote its checkpoint into (read-only for the model servers). */
  runDir: string
  /** The whole prepared data set: the evaluator reads its validation split. */
  dataDir?: string
  cacheDir?: string
  profile: Profile
  extraEnv?: Record<string, string>
  /** Where the model servers run; null runs them as plain processes (no sandbox: unsafe). */
  sandbox: HostLayout | null
  /** Read-only torch bytecode for the sandboxes (gpu profile), see compile-cache.ts. */
  bytecode?: string
  timeoutSeconds: number
  /**
   * Start now, while training still runs (servers up, torch imported, CUDA started), and measure
   * once this settles true; false cancels. Unset: the checkpoint is there already.
   */
  checkpointReady?: Promise<boolean>
  signal?: AbortSignal
}

const LINE = /^evaluation: (\{.*\})\s*$/m

/**
 * Pure: the evaluator's last `evaluation: {...}` line in `output`, or why there is none. Give it whole
 * lines: a log tail is cut from the front, and an error line longer than the tail (a model's own
 * words, escaped) was cut so that what was left began with `evaluation: {`, which threw here.
 */
export function parseEvaluation(output: string): { evaluation: Evaluation | null; error: string | null } {
  const lines = output.split('\n').filter(l => LINE.test(l))
  const last = lines.length ? LINE.exec(lines[lines.length - 1])![1] : null
  if (!last) return { evaluation: null, error: 'the evaluator printed no result' }
  let parsed: Partial<Evaluation> & { error?: string }
  try {
    parsed = JSON.parse(last) as Partial<Evaluation> & { error?: string }
  } catch {
    return { evaluation: null, error: 'the evaluator\'s result line could not be read' }
  }
  if (parsed.error) return { evaluation: null, error: parsed.error }
  if (typeof parsed.val_bpb !== 'number') return { evaluation: null, error: 'the evaluator printed no val_bpb' }
  return { evaluation: parsed as Evaluation, error: null }
}

/** A folder for the logits buffers: shared memory where the machine has it, else the temp folder. */
async function scratch(): Promise<string> {
  const shm = '/dev/shm'
  const base = await access(shm, constants.W_OK).then(() => shm, () => tmpdir())
  return mkdtemp(join(base, 'arg-eval-'))
}

/** The command line of one sandboxed model server: the candidate's files and its logits buffer. */
function serverCommand(o: EvaluateOptions, host: HostLayout, shmDir: string): string[] {
  const mounts: Mount[] = [
    { host: o.runDir, inside: INSIDE.run },
    { host: join(o.trainerDir, 'model_server.py'), inside: `${INSIDE.harness}/model_server.py` },
    // The buffer file alone, which evaluate.py creates before it starts the server: its folder is in
    // the host's /dev/shm, and writable it let a model fill the host's memory with files of its own,
    // kept past the run if the worker died before removing them (model_server.py bounds the file's size).
    { host: join(shmDir, 'logits.bin'), inside: `${INSIDE.shm}/logits.bin`, writable: true },
  ]
  const inside: Record<string, string> = { AUTORESEARCH_CACHE: INSIDE.cache, AUTORESEARCH_PROFILE: o.profile, PYTHONUNBUFFERED: '1' }
  if (o.bytecode) {
    mounts.push({ host: o.bytecode, inside: INSIDE.pycache })
    inside.PYTHONPYCACHEPREFIX = INSIDE.pycache
  }
  const { PYTHONPYCACHEPREFIX, ...base } = { ...trainerEnvironment(process.env), ...o.extraEnv }
  return bwrapCommand(host, {
    mounts,
    seccomp: 'model-server',
    env: sandboxEnvironment(base, inside),
    cwd: INSIDE.run,
    command: [o.python, '-B', `${INSIDE.harness}/model_server.py`, '--run-dir', INSIDE.run, '--checkpoint', `${INSIDE.run}/model.safetensors`, '--shm', `${INSIDE.shm}/logits.bin`],
  })
}

/**
 * Runs the trusted evaluator over what training saved. evaluate.py itself is our code and runs
 * outside the sandbox (it needs the validation split, which no sandbox of campaign code may see);
 * the candidate's model runs in two sandboxed model servers it talks to (docs/SECURITY.md).
 */
export async function runEvaluation(o: EvaluateOptions): Promise<EvaluationOutcome> {
  const dir = await scratch()
  try {
    const args = ['--run-dir', o.runDir, ...(o.checkpointReady ? ['--wait'] : [])]
    if (o.sandbox) {
      ensureSeccompFiles(o.sandbox)
      for (const i of [0, 1]) {
        const shmDir = join(dir, String(i))
        await mkdir(shmDir)
        args.push('--server', JSON.stringify(serverCommand(o, o.sandbox, shmDir)), '--shm', join(shmDir, 'logits.bin'))
      }
    }
    // The result is read from whole lines as they come, not from the log tail (cut to fit a report).
    let result = ''
    const env: Record<string, string> = { ...o.extraEnv }
    if (o.bytecode) env.PYTHONPYCACHEPREFIX = o.bytecode
    const r = await runTrainer({
      python: o.python, runDir: o.runDir, cwd: o.trainerDir, budgetSeconds: o.timeoutSeconds, profile: o.profile,
      cacheDir: o.cacheDir, dataDir: o.dataDir, extraEnv: env, hardTimeoutSeconds: o.timeoutSeconds, signal: o.signal, limits: o.sandbox?.limits,
      // -I ignores PYTHONPYCACHEPREFIX: the trusted bytecode goes on the command line.
      script: 'evaluate.py', argv: [o.python, '-I', '-B', ...(o.bytecode ? ['-X', `pycache_prefix=${o.bytecode}`] : []), join(o.trainerDir, 'evaluate.py'), ...args],
      release: o.checkpointReady?.then(ready => (ready ? 'go\n' : null)),
      onLine: line => { if (LINE.test(line)) result = line },
    })
    const base = { logTail: r.logTail, seconds: r.runSeconds, aborted: r.aborted }
    if (r.aborted) return { ...base, evaluation: null, error: r.error }
    const parsed = parseEvaluation(result)
    if (parsed.evaluation || parsed.error !== 'the evaluator printed no result') return { ...base, ...parsed }
    return { ...base, evaluation: null, error: r.error ?? parsed.error }
  } finally {
    await removeTree(dir) // the model servers could write there (their logits buffers' folders)
  }
}

/** True when the trainer folder has the trusted evaluator (every checkout since it exists). */
export const hasEvaluator = (trainerDir: string) => existsSync(join(trainerDir, 'evaluate.py'))

import { execa } from 'execa'

/** A Python interpreter that can import torch, as the trainer needs. */
export interface FoundPython {
  /** Absolute path of the interpreter (`sys.executable`), safe to pass to execa later. */
  path: string
  /** `torch.__version__`, e.g. `2.8.0+cu128` or `1.13.1`. */
  torchVersion: string
}

export class PythonNotFoundError extends Error {
  override name = 'PythonNotFoundError'
}

/** Tried in order when `AUTORESEARCH_PYTHON` is not set. */
export const DEFAULT_CANDIDATES = ['python3', '/usr/bin/python3', 'python'] as const

const PROBE = 'import sys, torch; print(torch.__version__); print(sys.executable)'

const INSTALL_HINT =
  'Install PyTorch for one of them: on Debian/Ubuntu `apt-get install python3-torch python3-sentencepiece` ' +
  '(CPU, enough for the cpu-tiny profile); on a GPU box `cd trainer && uv sync` and set ' +
  'AUTORESEARCH_PYTHON=trainer/.venv/bin/python. Or point AUTORESEARCH_PYTHON at any Python that has torch.'

export interface FindPythonOptions {
  /** Environment to read `AUTORESEARCH_PYTHON` from (defaults to `process.env`). */
  env?: NodeJS.ProcessEnv
  /** Interpreters to try when `AUTORESEARCH_PYTHON` is unset. */
  candidates?: readonly string[]
  /** Importing torch can take seconds on a cold disk; this bounds each attempt. */
  timeoutMs?: number
}

type Attempt = { ok: true; found: FoundPython } | { ok: false; why: string }

/**
 * Interpreters that imported torch in this process, by command: a worker's start asks for the
 * Python in several places (its lanes, the test that started it), and each probe imports torch,
 * ~1.5 s of CPU. One that failed is asked again next time.
 */
const found = new Map<string, FoundPython>()

async function tryCandidate(command: string, timeoutMs: number): Promise<Attempt> {
  const known = found.get(command)
  if (known) return { ok: true, found: known }
  const attempt = await probe(command, timeoutMs)
  if (attempt.ok) found.set(command, attempt.found)
  return attempt
}

async function probe(command: string, timeoutMs: number): Promise<Attempt> {
  const r = await execa(command, ['-c', PROBE], { reject: false, timeout: timeoutMs, stdin: 'ignore' })
  if (r.failed) {
    if (r.code === 'ENOENT') return { ok: false, why: 'not found' }
    if (r.timedOut) return { ok: false, why: `timed out after ${timeoutMs / 1000}s importing torch` }
    const last = String(r.stderr ?? '').trim().split('\n').pop() ?? ''
    return { ok: false, why: /No module named '?torch/.test(last) ? 'has no torch' : last || `exit code ${r.exitCode}` }
  }
  const [version, executable] = String(r.stdout).trim().split('\n').map(s => s.trim())
  if (!version) return { ok: false, why: 'printed no torch version' }
  return { ok: true, found: { torchVersion: version, path: executable || command } }
}

/**
 * Finds a Python with torch: `AUTORESEARCH_PYTHON` if set (and then only that one, so a
 * misconfigured override is reported rather than silently replaced), else the first candidate that
 * imports torch.
 */
export async function findPython(options: FindPythonOptions = {}): Promise<FoundPython> {
  const env = options.env ?? process.env
  const timeoutMs = options.timeoutMs ?? 120_000
  const override = env.AUTORESEARCH_PYTHON?.trim()
  if (override) {
    const attempt = await tryCandidate(override, timeoutMs)
    if (attempt.ok) return attempt.found
    throw new PythonNotFoundError(`AUTORESEARCH_PYTHON=${override} cannot run the trainer (${attempt.why}). ${INSTALL_HINT}`)
  }
  const tried: string[] = []
  for (const candidate of options.candidates ?? DEFAULT_CANDIDATES) {
    const attempt = await tryCandidate(candidate, timeoutMs)
    if (attempt.ok) return attempt.found
    tried.push(`${candidate}: ${attempt.why}`)
  }
  throw new PythonNotFoundError(`no Python with PyTorch found (tried ${tried.join('; ')}). ${INSTALL_HINT}`)
}

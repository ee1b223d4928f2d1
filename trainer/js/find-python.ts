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

/** Imports torch: proves its native libraries load (worker doctor). ~1.5 s of CPU, more with CUDA. */
const PROBE_IMPORT = 'import sys, torch; print(torch.__version__); print(sys.executable)'

/** Python: `torch_version_unimported()`, torch's version from its version.py, or None. Shared with the hardware probe. */
export const TORCH_VERSION_PY = String.raw`
def torch_version_unimported():
    import importlib.util, os, re
    spec = importlib.util.find_spec("torch")
    for folder in (spec and spec.submodule_search_locations) or []:
        try:
            with open(os.path.join(folder, "version.py")) as f:
                m = re.search(r"^__version__\s*=\s*['\"]([^'\"]+)['\"]", f.read(), re.M)
        except OSError:
            continue
        if m:
            return m.group(1)
    return None
`

/**
 * Finds torch without importing it and reads its version.py, which says what `torch.__version__`
 * would: every process that asks for the Python (a worker's start, its lanes, a coordinator
 * preparing data) would otherwise pay the import. A torch without a readable version.py is
 * imported. One that is installed but does not load is found by worker doctor, by the hardware
 * probe on a GPU machine (it imports torch there), or by the first run, whose log names the error.
 */
const PROBE_FIND = `
import importlib.util, sys
${TORCH_VERSION_PY}
if importlib.util.find_spec("torch") is None:
    sys.exit("ModuleNotFoundError: No module named 'torch'")
version = torch_version_unimported()
if version is None:
    import torch
    version = torch.__version__
print(version)
print(sys.executable)
`

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
  /** Import torch to prove it loads, not only that it is installed (worker doctor); ~1.5 s of CPU. */
  importTorch?: boolean
}

type Attempt = { ok: true; found: FoundPython } | { ok: false; why: string }

/**
 * Interpreters that answered in this process, by command and probe: a worker's start asks for the
 * Python in several places (its lanes, the test that started it). One that failed is asked again
 * next time.
 */
const found = new Map<string, FoundPython>()

async function tryCandidate(command: string, timeoutMs: number, importTorch: boolean): Promise<Attempt> {
  const key = `${importTorch ? 'imported' : 'found'}\0${command}`
  const known = found.get(key)
  if (known) return { ok: true, found: known }
  const attempt = await probe(command, timeoutMs, importTorch)
  if (attempt.ok) found.set(key, attempt.found)
  return attempt
}

async function probe(command: string, timeoutMs: number, importTorch: boolean): Promise<Attempt> {
  const r = await execa(command, ['-c', importTorch ? PROBE_IMPORT : PROBE_FIND], { reject: false, timeout: timeoutMs, stdin: 'ignore' })
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
    const attempt = await tryCandidate(override, timeoutMs, options.importTorch ?? false)
    if (attempt.ok) return attempt.found
    throw new PythonNotFoundError(`AUTORESEARCH_PYTHON=${override} cannot run the trainer (${attempt.why}). ${INSTALL_HINT}`)
  }
  const tried: string[] = []
  for (const candidate of options.candidates ?? DEFAULT_CANDIDATES) {
    const attempt = await tryCandidate(candidate, timeoutMs, options.importTorch ?? false)
    if (attempt.ok) return attempt.found
    tried.push(`${candidate}: ${attempt.why}`)
  }
  throw new PythonNotFoundError(`no Python with PyTorch found (tried ${tried.join('; ')}). ${INSTALL_HINT}`)
}

/**
 * The environment a trainer inherits. train.py is code someone else's agent wrote and its output
 * (the log tail) goes to the coordinator, so it must not see the worker's secrets: the worker
 * token, API keys, cloud credentials. Only what Python, torch and the GPU stack need passes.
 */
const PASS = [
  /^(PATH|HOME|USER|LOGNAME|LANG|LANGUAGE|TZ|TMPDIR|TEMP|TMP|TERM|PYTHONPATH|PYTHONHOME|PYTHONPYCACHEPREFIX|VIRTUAL_ENV|CONDA_PREFIX|XDG_CACHE_HOME|LD_LIBRARY_PATH|LIBRARY_PATH)$/,
  /^LC_/,
  /^(CUDA|NVIDIA|NCCL|CUDNN|HIP|ROCM|ROCR|HSA|PYTORCH|TORCH|TORCHINDUCTOR|TRITON|OMP|MKL|OPENBLAS|KMP|GOMP)_/,
  /^AUTORESEARCH_/,
]
const SECRET = /KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|AUTH|COOKIE|SESSION/i

/**
 * Search paths whose empty or relative entries mean the working directory: PATH to the shell and
 * execvp, LD_LIBRARY_PATH to the dynamic loader. `export LD_LIBRARY_PATH=$LD_LIBRARY_PATH:/usr/local/cuda/lib64`
 * where it was empty gives an empty first entry, and the worker's own processes (the launcher,
 * evaluate.py) started in a run folder that train.py had written: a libexpat.so.1 it left there was
 * loaded into both, outside the sandbox (worker/test/sandbox/path-lookup.test.ts).
 */
const SEARCH_PATHS = new Set(['PATH', 'LD_LIBRARY_PATH', 'LIBRARY_PATH', 'PYTHONPATH'])

/** Pure: a search path with only its absolute entries. */
export function absoluteEntries(value: string): string {
  return value.split(':').filter(entry => entry.startsWith('/')).join(':')
}

export function trainerEnvironment(base: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [name, value] of Object.entries(base)) {
    if (value === undefined || SECRET.test(name)) continue
    if (PASS.some(re => re.test(name))) out[name] = SEARCH_PATHS.has(name) ? absoluteEntries(value) : value
  }
  return out
}

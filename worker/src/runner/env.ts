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

export function trainerEnvironment(base: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [name, value] of Object.entries(base)) {
    if (value === undefined || SECRET.test(name)) continue
    if (PASS.some(re => re.test(name))) out[name] = value
  }
  return out
}

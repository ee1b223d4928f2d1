import { execa } from 'execa'
import { z } from 'zod'
import { Hardware, hardwareClass } from '@autoresearch-grid/shared'
import { TORCH_VERSION_PY } from '@autoresearch-grid/trainer'

/**
 * One Python run reports everything the coordinator needs about this machine. It goes through the
 * trainer's Python so the torch version and the GPUs it sees are the ones training will use.
 */
const PROBE_SCRIPT = `
import json, os, platform, sys, subprocess
out = {"gpus": [], "mps": False, "torch": None, "arch": platform.machine(), "platform": sys.platform,
       "cores": os.cpu_count() or 1, "cpu": platform.processor() or ""}
try:
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                out["cpu"] = line.split(":", 1)[1].strip()
                break
except OSError:
    pass
if sys.platform == "darwin":
    try:
        out["cpu"] = subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True, timeout=10).stdout.strip() or out["cpu"]
    except Exception:
        pass
${TORCH_VERSION_PY}
def version_unimported():
    # Where no GPU can be (Linux without CUDA, ROCm or WSL device nodes), importing torch (~1.5 s
    # of CPU) would only tell its version, which its version.py says as well.
    if not sys.platform.startswith("linux") or any(n.startswith(("nvidia", "kfd", "dxg")) for n in os.listdir("/dev")):
        return None
    return torch_version_unimported()
out["torch"] = version_unimported()
out["torchFrom"] = "version.py" if out["torch"] else "import"
if out["torch"] is None:
    try:
        import torch
        out["torch"] = torch.__version__
        if torch.cuda.is_available():
            for i in range(torch.cuda.device_count()):
                p = torch.cuda.get_device_properties(i)
                out["gpus"].append({"name": p.name, "memoryMb": round(p.total_memory / 2**20)})
        mps = getattr(torch.backends, "mps", None)
        out["mps"] = bool(mps is not None and mps.is_available())
    except ImportError:
        pass
print("HARDWARE_JSON " + json.dumps(out))
`

/** What the probe prints, before it is shaped into the shared `Hardware`. */
export const ProbeOutput = z.object({
  gpus: z.array(z.object({ name: z.string(), memoryMb: z.number() })),
  mps: z.boolean(),
  torch: z.string().nullable(),
  arch: z.string(),
  platform: z.string(),
  cores: z.number().int().positive(),
  cpu: z.string(),
  /** Where the torch version came from: its version.py (no GPU possible here) or importing it. */
  torchFrom: z.enum(['version.py', 'import']).optional(),
})
export type ProbeOutput = z.infer<typeof ProbeOutput>

/** Pure: shapes the probe's report into `Hardware`, clipping strings to the shared limits. */
export function toHardware(raw: ProbeOutput): Hardware {
  const gpus = raw.gpus.slice(0, 64).map(g => ({ name: g.name.slice(0, 200), memoryMb: Math.max(0, g.memoryMb) }))
  return Hardware.parse({
    gpus,
    cpu: { model: (raw.cpu || 'unknown').slice(0, 200), cores: raw.cores, arch: (raw.arch || 'unknown').slice(0, 40) },
    platform: raw.platform.slice(0, 40),
    torch: raw.torch?.slice(0, 80) ?? null,
    hardwareClass: hardwareClass({ gpus, arch: raw.arch, mps: raw.mps }),
  })
}

export interface ProbeOptions {
  python: string
  /** Extra environment, e.g. `CUDA_VISIBLE_DEVICES` to probe the GPU one worker loop owns. */
  env?: NodeJS.ProcessEnv
  timeoutMs?: number
}

export async function probeHardware(options: ProbeOptions): Promise<Hardware> {
  return toHardware(await probeRaw(options))
}

/** The probe's own report, before it is shaped into `Hardware`. */
export async function probeRaw(options: ProbeOptions): Promise<ProbeOutput> {
  const r = await execa(options.python, ['-c', PROBE_SCRIPT], {
    reject: false,
    stdin: 'ignore',
    env: options.env,
    timeout: options.timeoutMs ?? 120_000,
  })
  const line = String(r.stdout).split('\n').find(l => l.startsWith('HARDWARE_JSON '))
  if (r.failed || !line) {
    const why = r.timedOut ? 'timed out' : String(r.stderr).trim().split('\n').slice(-5).join('\n') || `exit code ${r.exitCode}`
    throw new Error(`hardware probe through ${options.python} failed: ${why}`)
  }
  return ProbeOutput.parse(JSON.parse(line.slice('HARDWARE_JSON '.length)))
}

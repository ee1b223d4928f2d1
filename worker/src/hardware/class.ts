/**
 * Normalized hardware class ids. Results are only compared within a class, so the id must be the
 * same for every box with the same accelerator however the driver spells its name, and different
 * where speed differs materially (model, memory size, count).
 */

export interface ClassInput {
  gpus: readonly { name: string; memoryMb: number }[]
  /** CPU architecture as Python's `platform.machine()` reports it (`x86_64`, `aarch64`, `arm64`). */
  arch: string
  /** True when torch runs on Apple's Metal backend (and there is no CUDA GPU). */
  mps?: boolean
}

/** Words that name a vendor, a product line or a package, not the chip itself. */
const NOISE_WORDS = new Set([
  'nvidia', 'geforce', 'tesla', 'quadro', 'amd', 'radeon', 'instinct', 'intel', 'r', 'tm', 'graphics',
  'gpu', 'generation', 'corporation',
])
/** Form factors and memory types: "A100-SXM4-40GB" and "A100-PCIE-40GB" are one class by design. */
const PACKAGING = /^(sxm\d*|pcie|hbm\d*e?|gddr\d+x?)$/
/** Marketed memory sizes in GB: drivers report usable MiB (81559 for an 80 GB H100, 15360 for a 16 GB T4). */
const MARKETED_GB = [2, 3, 4, 6, 8, 10, 11, 12, 16, 20, 24, 32, 40, 48, 64, 80, 94, 96, 128, 141, 188, 192, 256, 288]

function sanitize(s: string): string {
  return s.toLowerCase().replace(/[^a-z0-9_.-]+/g, '')
}

/** Nearest marketed size within 12%, else the rounded GiB. */
export function memoryGb(memoryMb: number): number {
  const gib = memoryMb / 1024
  let best = MARKETED_GB[0]
  for (const gb of MARKETED_GB) if (Math.abs(gb - gib) < Math.abs(best - gib)) best = gb
  return Math.abs(best - gib) / best <= 0.12 ? best : Math.max(1, Math.round(gib))
}

/** `NVIDIA A100-SXM4-40GB` → `a100-40g`; `NVIDIA GeForce RTX 4090` with 24564 MiB → `rtx4090-24g`. */
export function gpuClass(name: string, memoryMb: number): string {
  const tokens = name.toLowerCase().split(/[^a-z0-9]+/).filter(Boolean)
  let gbFromName: number | null = null
  const model: string[] = []
  for (const token of tokens) {
    const mem = /^(\d+)gb?$/.exec(token)
    if (mem) gbFromName = Number(mem[1])
    else if (!NOISE_WORDS.has(token) && !PACKAGING.test(token)) model.push(token)
  }
  const chip = model.join('') || 'gpu'
  const gb = gbFromName ?? (memoryMb > 0 ? memoryGb(memoryMb) : null)
  return gb === null ? chip : `${chip}-${gb}g`
}

function normalizeArch(arch: string): string {
  const a = sanitize(arch)
  if (a === 'amd64' || a === 'x64') return 'x86_64'
  return a || 'unknown'
}

/**
 * The class id of a machine: `h100-80g`, `2xh100-80g`, `cpu-x86_64`, `mps-arm64`. Mixed GPUs list
 * each model with its count, sorted, so the id does not depend on device order.
 */
export function hardwareClass(input: ClassInput): string {
  if (input.gpus.length === 0) return `${input.mps ? 'mps' : 'cpu'}-${normalizeArch(input.arch)}`
  const counts = new Map<string, number>()
  for (const gpu of input.gpus) {
    const c = gpuClass(gpu.name, gpu.memoryMb)
    counts.set(c, (counts.get(c) ?? 0) + 1)
  }
  const kinds = [...counts.keys()].sort()
  const id = kinds.length === 1 && input.gpus.length === 1
    ? kinds[0]
    : kinds.map(k => `${counts.get(k)}x${k}`).join('_')
  return id.slice(0, 64).replace(/^[^a-z0-9]+/, '') || 'gpu'
}

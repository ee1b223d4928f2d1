/**
 * Hardware classes: val_bpb after a fixed wall-clock budget depends on how fast the machine is, so
 * numbers are only compared between machines of one class. A class id must therefore be the same
 * however a driver spells the model ("NVIDIA A100-SXM4-40GB", "A100 SXM4 40GB") and different
 * wherever throughput differs materially:
 * - the chip (`h100`, `rtx4090`, `rtx4070tisuper`), vendor and product-line words dropped;
 * - the variant when it changes speed at the same name: `pcie` and `nvl` boards run at lower power
 *   and memory bandwidth than the SXM module (an H100 PCIe has 2.0 TB/s against the SXM's 3.35),
 *   `laptop` parts are a different power class altogether. SXM is the default and gets no suffix;
 * - the memory in marketed GB (`-80g`), which separates e.g. the 40 and 80 GB A100;
 * - the count (`2x…`) for a worker that trains on several GPUs at once.
 * Grammar: `[<count>x]<chip>[-<variant>]-<GB>g`, or `cpu-<arch>`, or `mps-apple`; several GPU
 * models on one worker are joined with `_`, sorted.
 */

export interface GpuDescription {
  /** As nvidia-smi or torch reports it, e.g. "NVIDIA H100 80GB HBM3". */
  name: string
  /** Total memory in MiB as the driver reports it (81559 for an 80 GB H100); 0 or absent if unknown. */
  memoryMb?: number
}

export interface HardwareDescription {
  gpus: readonly GpuDescription[]
  /** CPU architecture as `uname -m`, Python's platform.machine() or Node's process.arch says it. */
  arch?: string
  /** True when training runs on Apple's Metal backend. */
  mps?: boolean
}

/**
 * Marketed memory sizes in GB. Drivers report usable MiB, a little under the label (an L4 sold as
 * 24 GB reports 23034 MiB = 22.5 GiB), so a reported size maps to the smallest label at or above it.
 */
const MARKETED_GB = [1, 2, 3, 4, 5, 6, 8, 10, 11, 12, 16, 20, 24, 32, 40, 48, 64, 80, 94, 96, 128, 141, 180, 192, 256, 288]
/** How far above a label a reported size may be and still carry it (rounding in the driver). */
const LABEL_SLACK_GIB = 0.25

/** Vendor, product-line and filler words: they name the brand, not the chip. */
const BRAND_WORDS = new Set([
  'nvidia', 'geforce', 'tesla', 'quadro', 'amd', 'radeon', 'instinct', 'intel', 'apple', 'corporation',
  'gpu', 'graphics', 'generation', 'design', 'with', 'r', 'tm',
])
const VARIANTS: Record<string, string> = { pcie: 'pcie', nvl: 'nvl', laptop: 'laptop', mobile: 'laptop' }
/** Package and memory-technology words that do not change the class (SXM is the default). */
const PACKAGING = /^(sxm\d*|hbm\d*e?|gddr\d+x?)$/

export function marketedGb(memoryMb: number): number {
  const gib = memoryMb / 1024
  for (const label of MARKETED_GB) if (gib <= label + LABEL_SLACK_GIB) return label
  return Math.round(gib)
}

/** The class of one GPU: `NVIDIA A100-SXM4-40GB` → `a100-40g`, `NVIDIA H100 PCIe` → `h100-pcie-80g`. */
export function gpuClass(gpu: GpuDescription): string {
  const words = gpu.name
    .toLowerCase()
    .replace(/\((r|tm)\)/g, ' ')
    .replace(/max-q/g, ' ') // a power-limited laptop part, already told apart by `laptop`
    .split(/[^a-z0-9]+/)
    .filter(Boolean)
  const chip: string[] = []
  let variant: string | undefined
  let gbFromName: number | undefined
  for (const word of words) {
    const gb = /^(\d+)gb$/.exec(word)
    if (gb) gbFromName = Number(gb[1])
    else if (word in VARIANTS) variant = VARIANTS[word]
    else if (!BRAND_WORDS.has(word) && !PACKAGING.test(word)) chip.push(word)
  }
  // The driver's number wins over the name: "NVIDIA GH200 480GB" counts the CPU's memory too.
  const gb = gpu.memoryMb !== undefined && gpu.memoryMb > 0 ? marketedGb(gpu.memoryMb) : gbFromName
  return [chip.join('') || 'gpu', variant, gb === undefined ? undefined : `${gb}g`].filter(Boolean).join('-')
}

function normalizeArch(arch: string | undefined): string {
  const a = (arch ?? '').toLowerCase().replace(/[^a-z0-9_]/g, '')
  if (a === 'x64' || a === 'amd64' || a === 'x8664') return 'x86_64'
  if (a === 'aarch64' || a === 'arm64' || a === 'armv8') return 'arm64'
  return a || 'unknown'
}

/**
 * The class id of a worker: `h100-80g`, `2xh100-80g`, `rtx4090-24g`, `cpu-x86_64`, `mps-apple`.
 * Any CUDA/ROCm GPU wins over MPS and CPU; GPU order does not matter.
 */
export function hardwareClass(hw: HardwareDescription): string {
  if (hw.gpus.length === 0) return hw.mps ? 'mps-apple' : `cpu-${normalizeArch(hw.arch)}`
  const counts = new Map<string, number>()
  for (const gpu of hw.gpus) {
    const c = gpuClass(gpu)
    counts.set(c, (counts.get(c) ?? 0) + 1)
  }
  return [...counts.keys()]
    .sort()
    .map(c => (counts.get(c) === 1 ? c : `${counts.get(c)}x${c}`))
    .join('_')
}

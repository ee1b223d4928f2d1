import { join } from 'node:path'

/** One GPU loop of `worker join --gpus`: its own worker identity, state folder and device. */
export interface LoopPlan {
  name: string
  stateDir: string
  /** CUDA_VISIBLE_DEVICES for the loop; absent for the single loop without --gpus. */
  env?: Record<string, string>
  lane: string
}

/** Pure: `0,2` → [0, 2]; throws with what to type on anything else. `all` is resolved by the caller. */
export function parseGpuList(spec: string): number[] {
  const ids = spec.split(',').map(s => s.trim()).filter(Boolean).map(Number)
  if (!ids.length || ids.some(n => !Number.isInteger(n) || n < 0)) throw new Error(`--gpus takes "all" or device indices like 0,1 (got "${spec}")`)
  return [...new Set(ids)]
}

/**
 * Pure: the loops to run. Without GPUs, one loop under the plain name; with them, one per device,
 * named `<name>-gpu<N>` (each is its own worker to the coordinator, so each gets its own leases,
 * baselines and heartbeat) with a state folder of its own; the prepared data is shared.
 */
export function planLoops(name: string, stateDir: string, gpus: readonly number[]): LoopPlan[] {
  if (gpus.length === 0) return [{ name, stateDir, lane: '' }]
  return gpus.map(g => ({ name: `${name}-gpu${g}`, stateDir: join(stateDir, `gpu${g}`), env: { CUDA_VISIBLE_DEVICES: String(g) }, lane: `gpu${g}` }))
}

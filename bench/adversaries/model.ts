/**
 * The research model of the adversary bench: what a train.py "really" scores, so that every merge
 * can be judged against the truth. The seed has numbered slot lines far apart; an edit replaces
 * one slot with `E_<name> = <effect>  # slot k`, and the true val_bpb of a source is BASE plus the
 * sum of its effects. Edits in different slots merge cleanly (three-way), as real independent
 * changes do; an edit of a slot already taken conflicts and goes the rebase way.
 */
import type { Hardware, Metrics } from '../../shared/src/index.ts'

export const BASE_VAL_BPB = 1.5
/** Run-to-run noise of every honest measurement. */
export const SIGMA = 0.01
export const BUDGET_SECONDS = 10
export const SLOTS = 60

export const SEED_TRAIN_PY = `DEPTH = 4\n\n${Array.from({ length: SLOTS }, (_, k) => `# slot ${k}\n\n\n`).join('')}print("train")\n`

const EFFECT = /^E_[A-Za-z0-9_]+ = (-?\d+\.\d+)/gm

export function trueValBpb(source: string): number {
  let v = BASE_VAL_BPB
  for (const m of source.matchAll(EFFECT)) v += Number(m[1])
  return v
}

function freeSlots(source: string): number[] {
  return Array.from({ length: SLOTS }, (_, k) => k).filter(k => source.includes(`\n# slot ${k}\n`))
}

/** Puts an effect into a free slot (the first one from `preferred` on); null when every slot is taken. */
export function withEffect(source: string, name: string, effect: number, preferred: number): string | null {
  const free = freeSlots(source)
  if (!free.length) return null
  const k = free.find(s => s >= preferred % SLOTS) ?? free[0]
  return source.replace(`\n# slot ${k}\n`, `\nE_${name} = ${effect.toFixed(6)}  # slot ${k}\n`)
}

/** The effect lines a diff adds (a rebase unit's reference), as [name, effect]. */
export function effectsInDiff(diff: string): [string, number][] {
  return [...diff.matchAll(/^\+E_([A-Za-z0-9_]+) = (-?\d+\.\d+)/gm)].map(m => [m[1], Number(m[2])])
}

export function metrics(valBpb: number): Metrics {
  return { val_bpb: valBpb, training_seconds: BUDGET_SECONDS, total_seconds: BUDGET_SECONDS + 2, peak_vram_mb: 0, mfu_percent: 0, total_tokens_M: 0.1,
    num_steps: 20, num_params_M: 1, depth: 4 }
}

export const CPU: Hardware = { gpus: [], cpu: { model: 'bench cpu', cores: 2, arch: 'x86_64' }, platform: 'linux', torch: '2.5.0', hardwareClass: 'cpu-x86_64' }
/** A GPU nobody else has: the class `rtx9999-48g` two colluders invented. */
export const INVENTED: Hardware = {
  gpus: [{ name: 'NVIDIA GeForce RTX 9999', memoryMb: 49152 }], cpu: { model: 'bench cpu', cores: 2, arch: 'x86_64' }, platform: 'linux', torch: '2.5.0',
  hardwareClass: 'rtx9999-48g',
}

/**
 * What a simulated worker "discovers", with no GPU: an edit of one hyperparameter constant in
 * train.py (what the heuristic researcher does) and a val_bpb that depends on the edited source.
 * Every distinct source has a fixed true value (a hash of its text, ±0.01 around 1.0) and each run
 * adds noise, so the ratchet sees what it sees in production: mostly useless edits, a few that
 * clear the noise floor, verifications that confirm or refute them, and an occasional new best.
 */
import { createHash } from 'node:crypto'
import type { Hardware, Metrics } from '../../shared/src/index.ts'

/** Constants the edit may touch, as `NAME = <number>` lines at the top of train.py. */
const KNOBS = ['MATRIX_LR', 'EMBEDDING_LR', 'UNEMBEDDING_LR', 'SCALAR_LR', 'WARMDOWN_FRAC', 'MUON_MOMENTUM']
/** Spread of true values between sources, and run-to-run noise of one source (σ). */
const EFFECT = 0.01
const NOISE = 0.003

/** Multiplies one constant by a random factor in [0.5, 2]; returns the new source and what changed. */
export function editSource(source: string, random: () => number): { source: string; description: string } {
  const knob = KNOBS[Math.floor(random() * KNOBS.length)]
  const line = new RegExp(`^${knob} = ([0-9.eE+-]+)`, 'm')
  const m = line.exec(source)
  if (!m) return { source: `${source}\n# bench edit ${random().toString(36).slice(2, 10)}\n`, description: 'append a comment' }
  const before = Number(m[1])
  const after = Number((before * 2 ** (random() * 2 - 1)).toPrecision(4))
  return { source: source.replace(line, `${knob} = ${after}`), description: `${knob} ${before} -> ${after}` }
}

function trueValBpb(source: string): number {
  const u = createHash('sha256').update(source).digest().readUInt32BE(0) / 0x1_0000_0000
  return 1 + EFFECT * (2 * u - 1)
}

function gaussian(random: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random())
}

/** The summary block a run of `source` would print, with training_seconds equal to the budget. */
export function runMetrics(source: string, budgetSeconds: number, random: () => number): Metrics {
  return {
    val_bpb: Number((trueValBpb(source) + NOISE * gaussian(random)).toFixed(6)),
    training_seconds: budgetSeconds,
    total_seconds: budgetSeconds + 12.5,
    peak_vram_mb: 45060.2,
    mfu_percent: 39.8,
    total_tokens_M: 499.6,
    num_steps: 953,
    num_params_M: 50.3,
    depth: 8,
  }
}

/** A log tail of the size a real run sends (about 2 KB of progress lines). */
export function logTail(steps = 30): string {
  return Array.from({ length: steps }, (_, i) => `step ${String(900 + i).padStart(5, '0')} | ${(90 + i / 3).toFixed(1)}% | loss 3.${1000 + i} | lr 0.04 | dt 312ms | tok/s 1,680,000 | mfu 39.8 | remaining ${30 - i}s`).join('\n')
}

/** Three kinds of GPU box, so the scheduler keeps baselines and verifications per hardware class. */
export const HARDWARE: Hardware[] = [
  { name: 'NVIDIA H100 80GB HBM3', memoryMb: 81559 },
  { name: 'NVIDIA A100-SXM4-80GB', memoryMb: 81920 },
  { name: 'NVIDIA GeForce RTX 4090', memoryMb: 24564 },
].map(gpu => ({ gpus: [gpu], cpu: { model: 'AMD EPYC 7B13', cores: 32, arch: 'x86_64' }, platform: 'linux', torch: '2.8.0', hardwareClass: 'bench' }))

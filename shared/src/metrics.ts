import { z } from 'zod'

/** The summary block train.py prints at the end of a run (DESIGN §10), as numbers. */
export const Metrics = z.object({
  val_bpb: z.number(),
  training_seconds: z.number(),
  total_seconds: z.number(),
  peak_vram_mb: z.number(),
  mfu_percent: z.number(),
  total_tokens_M: z.number(),
  num_steps: z.number().int(),
  num_params_M: z.number(),
  depth: z.number().int(),
})
export type Metrics = z.infer<typeof Metrics>

export const SUMMARY_KEYS = Object.keys(Metrics.shape) as (keyof Metrics)[]

/**
 * What train.py itself prints at the end: the summary without val_bpb. Since the metric is measured
 * by the trusted evaluator (trainer/evaluate.py), these numbers are the trainer's own account of its
 * run: shown, never compared, and training_seconds is capped by the worker's clock.
 */
export const TrainingSummary = Metrics.omit({ val_bpb: true })
export type TrainingSummary = z.infer<typeof TrainingSummary>
export const TRAINING_SUMMARY_KEYS = Object.keys(TrainingSummary.shape) as (keyof TrainingSummary)[]

export class SummaryParseError extends Error {
  override name = 'SummaryParseError'
}

const NUMBER = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$|^[+-]?(nan|inf|infinity)$/i

function toNumber(text: string): number {
  const v = text.toLowerCase().replace(/^\+/, '')
  if (v === 'nan' || v === '-nan') return Number.NaN
  if (/^-?inf(inity)?$/.test(v)) return v.startsWith('-') ? -Infinity : Infinity
  return Number(v)
}

/**
 * Parses the summary block from a trainer's output. The last `---` line starts the block; every
 * key must be present exactly once with a number, or the whole parse fails: a half-parsed result
 * would let a truncated run pass for a finished one.
 */
export function parseSummary(output: string): Metrics {
  return parseBlock(output, Metrics, SUMMARY_KEYS)
}

/** The block train.py prints (no val_bpb: the evaluator measures that); same rules as parseSummary. */
export function parseTrainingSummary(output: string): TrainingSummary {
  return parseBlock(output, TrainingSummary, TRAINING_SUMMARY_KEYS)
}

function parseBlock<T>(output: string, schema: z.ZodType<T>, keys: readonly string[]): T {
  const lines = output.split(/\r?\n/)
  const start = lines.map(l => l.trim()).lastIndexOf('---')
  if (start < 0) throw new SummaryParseError('no summary block: the trainer did not print its final "---" line (did it crash or time out?)')
  const seen = new Map<string, number>()
  for (const raw of lines.slice(start + 1)) {
    const line = raw.trim()
    if (line === '') continue
    const m = /^([A-Za-z_][A-Za-z0-9_]*):\s*(\S+)\s*$/.exec(line)
    if (!m) continue
    const [, key, value] = m
    if (!keys.includes(key)) continue
    if (seen.has(key)) throw new SummaryParseError(`summary key "${key}" appears twice`)
    if (!NUMBER.test(value)) throw new SummaryParseError(`summary key "${key}" has a value that is not a number: "${value}"`)
    seen.set(key, toNumber(value))
  }
  const missing = keys.filter(k => !seen.has(k))
  if (missing.length) throw new SummaryParseError(`summary block is incomplete: missing ${missing.join(', ')} (output truncated?)`)
  const parsed = schema.safeParse(Object.fromEntries(seen))
  if (!parsed.success) throw new SummaryParseError(`summary block is malformed: ${parsed.error.issues.map(i => `${i.path.join('.')}: ${i.message}`).join('; ')}`)
  return parsed.data
}

/** One progress line of a training run: `step 00042 | 37.5% | loss 4.1234 | ...`. */
export const Progress = z.object({
  step: z.number().int().nonnegative(),
  percent: z.number().min(0).max(100),
  loss: z.number().nullable(),
  remainingSeconds: z.number().nullable(),
})
export type Progress = z.infer<typeof Progress>

export function parseProgressLine(line: string): Progress | null {
  const step = /^step\s+(\d+)/.exec(line.trim())
  const pct = /\|\s*([\d.]+)%/.exec(line)
  if (!step || !pct) return null
  const loss = /loss\s+([\d.eE+-]+|nan|inf)/i.exec(line)
  const rem = /remaining\s+([\d.]+)s/.exec(line)
  const finite = (x: number) => (Number.isFinite(x) ? x : null)
  const progress = {
    step: Number(step[1]),
    percent: Math.min(100, Number(pct[1])),
    loss: loss ? finite(Number(loss[1])) : null,
    remainingSeconds: rem ? finite(Number(rem[1])) : null,
  }
  // The line is campaign code's, and it rides in every heartbeat of the worker: one the heartbeat's
  // schema refuses ("1.2.3%", a step past 2^53) had the coordinator refuse them all while the run
  // lasted, and the leases of every unit the worker held went unrenewed.
  return Progress.safeParse(progress).success ? progress : null
}

import type { WorkUnit } from '@autoresearch-grid/shared'

/**
 * Scripted results that behave like real ones, so the ratchet has something to decide: a source
 * carries the val_bpb it "trains" to in its last `# val_bpb:` line (the seed trains to 3.0), so
 * baselines and verifications of a commit reproduce it exactly, while an exploration appends a new
 * line, better or worse than its parent. Every explore then has its own train.py.
 */
const SEED_VALUE = 3.0
const STEP = 0.05
const FLOOR = 0.5

export function trainedValue(source: Record<string, string>): number {
  const lines = [...(source['train.py'] ?? '').matchAll(/^# val_bpb: ([\d.]+)/gm)]
  return lines.length ? Number(lines[lines.length - 1][1]) : SEED_VALUE
}

/** What a scripted worker reports for a unit: `improve` decides whether an exploration is a win. */
export function scriptedResult(unit: WorkUnit, improve: boolean, by: string): { valBpb: number; source?: Record<string, string>; description?: string } {
  const parent = trainedValue(unit.source)
  if (unit.kind === 'baseline' || unit.kind === 'verify') return { valBpb: parent }
  const value = improve ? Math.max(FLOOR, parent - STEP) : parent + 0.5
  const text = `${unit.source['train.py']}\n# val_bpb: ${value.toFixed(4)} (${unit.id} by ${by})\n`
  return { valBpb: value, source: { ...unit.source, 'train.py': text }, description: `${improve ? 'better' : 'worse'} ${value.toFixed(4)} (${unit.id})` }
}

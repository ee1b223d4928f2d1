import type { ResultRow } from '@autoresearch-grid/shared'

/**
 * Where a solo run stands, read back from its results.tsv (the codec is shared/src/results-tsv.ts):
 * the best kept val_bpb, and what was tried since the last keep (what the agent should not repeat).
 */
export function summarize(rows: readonly ResultRow[]): { best: number | null; triedSinceBest: string[] } {
  let best: number | null = null
  let lastKeep = -1
  rows.forEach((r, i) => {
    if (r.status === 'keep' && r.valBpb !== null && Number.isFinite(r.valBpb) && r.valBpb > 0) {
      best = best === null ? r.valBpb : Math.min(best, r.valBpb)
      lastKeep = i
    }
  })
  return { best, triedSinceBest: rows.slice(lastKeep + 1).map(r => r.description) }
}

/**
 * results.tsv in the autoresearch format: one row per experiment, tab-separated, with a header.
 * `commit` is the short hash of the experiment's commit, `memory_gb` the peak GPU memory, `status`
 * keep | discard | crash (a crash records 0 for both numbers). Pure: text in, text out.
 */
export const HEADER = 'commit\tval_bpb\tmemory_gb\tstatus\tdescription'

export type ResultStatus = 'keep' | 'discard' | 'crash'

export interface ResultRow {
  commit: string
  valBpb: number
  memoryGb: number
  status: ResultStatus
  description: string
}

export function formatRow(r: ResultRow): string {
  const description = r.description.replace(/\s+/g, ' ').trim()
  return [r.commit.slice(0, 7), r.valBpb.toFixed(6), r.memoryGb.toFixed(1), r.status, description].join('\t')
}

export function parseResults(text: string): ResultRow[] {
  const rows: ResultRow[] = []
  for (const line of text.split(/\r?\n/)) {
    if (!line.trim() || line.startsWith('commit\t')) continue
    const [commit, val, mem, status, ...rest] = line.split('\t')
    if (status !== 'keep' && status !== 'discard' && status !== 'crash') continue
    rows.push({ commit, valBpb: Number(val), memoryGb: Number(mem), status, description: rest.join(' ') })
  }
  return rows
}

/** The best kept val_bpb, and what was tried since the last keep (what the agent should not repeat). */
export function summarize(rows: readonly ResultRow[]): { best: number | null; triedSinceBest: string[] } {
  let best: number | null = null
  let lastKeep = -1
  rows.forEach((r, i) => {
    if (r.status === 'keep' && Number.isFinite(r.valBpb) && r.valBpb > 0) {
      best = best === null ? r.valBpb : Math.min(best, r.valBpb)
      lastKeep = i
    }
  })
  return { best, triedSinceBest: rows.slice(lastKeep + 1).map(r => r.description) }
}

/** Pure: the ratchet of plain autoresearch. A candidate is kept only when it beats the best. */
export function decide(valBpb: number | null, best: number | null, minDelta = 0): ResultStatus {
  if (valBpb === null || !Number.isFinite(valBpb) || valBpb <= 0) return 'crash'
  if (best === null) return 'keep'
  return valBpb < best - minDelta ? 'keep' : 'discard'
}

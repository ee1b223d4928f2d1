/**
 * The results.tsv of autoresearch (one row per experiment: commit, val_bpb, memory_gb, status,
 * description), so a campaign can be exported to, or started from, a solo run.
 */
export interface ResultRow {
  commit: string
  valBpb: number | null
  memoryGb: number
  status: 'keep' | 'discard' | 'crash'
  description: string
}

const HEADER = 'commit\tval_bpb\tmemory_gb\tstatus\tdescription'
const clean = (s: string) => s.replace(/[\t\r\n]+/g, ' ').trim()

export function toResultsTsv(rows: ResultRow[]): string {
  const lines = rows.map(r => [r.commit.slice(0, 7), (r.valBpb ?? 0).toFixed(6), r.memoryGb.toFixed(1), r.status, clean(r.description)].join('\t'))
  return [HEADER, ...lines].join('\n') + '\n'
}

export function parseResultsTsv(text: string): ResultRow[] {
  const lines = text.split(/\r?\n/).filter(l => l.trim() !== '')
  if (lines[0]?.split('\t').slice(0, 5).join('\t') !== HEADER) throw new Error(`not a results.tsv: the first line must be "${HEADER.replace(/\t/g, '<TAB>')}"`)
  return lines.slice(1).map((line, i) => {
    const [commit, val, mem, status, ...desc] = line.split('\t')
    if (!['keep', 'discard', 'crash'].includes(status)) throw new Error(`results.tsv line ${i + 2}: status must be keep, discard or crash, not "${status}"`)
    const valBpb = Number(val)
    if (!Number.isFinite(valBpb) || !Number.isFinite(Number(mem))) throw new Error(`results.tsv line ${i + 2}: val_bpb and memory_gb must be numbers`)
    return { commit, valBpb: status === 'crash' ? null : valBpb, memoryGb: Number(mem), status: status as ResultRow['status'], description: desc.join(' ').trim() }
  })
}

/** Our experiment statuses in autoresearch's three words; baselines and verifications are not listed. */
export function resultStatus(status: string): ResultRow['status'] | null {
  if (status === 'kept') return 'keep'
  if (status === 'crash' || status === 'rejected' || status === 'rejected-unsafe') return 'crash'
  if (status === 'discarded' || status === 'stale') return 'discard'
  return null
}

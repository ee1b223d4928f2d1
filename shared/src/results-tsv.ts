/**
 * results.tsv of autoresearch: one row per experiment, tab-separated, under a header —
 * `commit` (short hash), `val_bpb`, `memory_gb` (peak GPU memory), `status` (keep | discard |
 * crash), `description`. `worker solo` writes and resumes from it; the coordinator exports a
 * campaign as one and starts a campaign from one. Pure: text in, text out.
 *
 * One set of rules for both: a crash has no measurement, so it reads as `valBpb: null` and is
 * written as 0.000000 / 0.0, as autoresearch writes crashes; a description loses only the tabs and
 * line breaks that would break the format; and a malformed file is refused with the line at fault,
 * never skipped over, since a resumed solo run takes its best from these rows and a silently
 * dropped `keep` would make it resume from a worse one.
 */
export const RESULTS_TSV_HEADER = 'commit\tval_bpb\tmemory_gb\tstatus\tdescription'

export const RESULT_STATUSES = ['keep', 'discard', 'crash'] as const
export type ResultStatus = (typeof RESULT_STATUSES)[number]

export interface ResultRow {
  commit: string
  /** Null for a crash. */
  valBpb: number | null
  memoryGb: number
  status: ResultStatus
  description: string
}

const oneLine = (s: string) => s.replace(/[\t\r\n]+/g, ' ').trim()

/** One row, without its line break. */
export function formatResultRow(r: ResultRow): string {
  const crashed = r.status === 'crash'
  const val = crashed ? 0 : r.valBpb ?? 0
  return [r.commit.slice(0, 7), val.toFixed(6), (crashed ? 0 : r.memoryGb).toFixed(1), r.status, oneLine(r.description)].join('\t')
}

/** The whole file: the header, then one line per row. */
export function toResultsTsv(rows: readonly ResultRow[]): string {
  return [RESULTS_TSV_HEADER, ...rows.map(formatResultRow)].join('\n') + '\n'
}

/** The rows of a results.tsv; throws, naming the line, on anything that is not one. */
export function parseResultsTsv(text: string): ResultRow[] {
  const lines = text.split(/\r?\n/).filter(l => l.trim() !== '')
  if (lines[0]?.split('\t').slice(0, 5).join('\t') !== RESULTS_TSV_HEADER) {
    throw new Error(`not a results.tsv: the first line must be "${RESULTS_TSV_HEADER.replace(/\t/g, '<TAB>')}"`)
  }
  return lines.slice(1).map((line, i) => parseRow(line, i + 2))
}

function parseRow(line: string, lineNumber: number): ResultRow {
  const [commit, val, mem, status, ...description] = line.split('\t')
  if (!isResultStatus(status)) throw new Error(`results.tsv line ${lineNumber}: status must be keep, discard or crash, not "${status}"`)
  const valBpb = Number(val)
  const memoryGb = Number(mem)
  if (!Number.isFinite(valBpb) || !Number.isFinite(memoryGb)) throw new Error(`results.tsv line ${lineNumber}: val_bpb and memory_gb must be numbers`)
  return { commit, valBpb: status === 'crash' ? null : valBpb, memoryGb, status, description: description.join(' ').trim() }
}

function isResultStatus(s: string | undefined): s is ResultStatus {
  return (RESULT_STATUSES as readonly (string | undefined)[]).includes(s)
}

/** An experiment's status in autoresearch's three words; baselines and verifications are not listed. */
export function resultStatus(status: string): ResultStatus | null {
  if (status === 'kept') return 'keep'
  if (status === 'crash' || status === 'rejected' || status === 'rejected-unsafe') return 'crash'
  if (status === 'discarded' || status === 'stale') return 'discard'
  return null
}

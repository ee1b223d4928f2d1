import { diffArrays } from 'diff'

/**
 * Edits (lines added plus lines deleted) a report's patch may take in this process. An agent's
 * edit of train.py is a few dozen; a source rewritten wholesale goes to git's diff-tree instead,
 * off the event loop.
 */
export const PATCH_EDIT_LIMIT = 400

/**
 * The matcher's work allowed here, in lines to match times edits: its cost grows with both (a
 * 600-line trainer edited at both ends: ~1,200 lines, so up to 400 edits; ~5 ms at most). A source
 * of 85,000 short lines with a few changes spread through it took 30-50 ms on the event loop before
 * this bound; a worker may send one with every report, so such sources go to git.
 */
const MATCHING_BUDGET = 500_000

/** Lines of context around a change, as git shows them. */
const CONTEXT = 3

/** Lines a file may have for its patch to be made here: the seed trainer has ~600. */
const MAX_LINES = 10_000

/**
 * A file as lines, each with its newline (a last line without one keeps none); null past
 * MAX_LINES (cutting 256 KB of two-byte lines into 85,000 strings took 10-20 ms of the event loop).
 */
function linesOf(text: string): string[] | null {
  const lines: string[] = []
  let from = 0
  for (let at = text.indexOf('\n'); at >= 0; at = text.indexOf('\n', from)) {
    if (lines.length === MAX_LINES) return null
    lines.push(text.slice(from, at + 1))
    from = at + 1
  }
  if (from < text.length) lines.push(text.slice(from))
  return lines
}

/**
 * The unified hunks from `a` to `b` (git's layout: CONTEXT lines around each change, changes closer
 * than twice that in one hunk, `\ No newline at end of file` after a last line without one). Only
 * the lines between the whole lines both share at their head and tail go to jsdiff's matcher; the
 * context comes from the texts themselves, so a hunk's context is always there, whichever way the
 * matcher paired ambiguous lines. Null when the matcher would need more than PATCH_EDIT_LIMIT edits,
 * or more work than MATCHING_BUDGET, or a file is longer than MAX_LINES.
 */
function hunksOf(a: string, b: string): string[] | null {
  const la = linesOf(a)
  const lb = la && linesOf(b)
  if (!la || !lb) return null
  let head = 0
  while (head < la.length && head < lb.length && la[head] === lb[head]) head++
  let tail = 0
  while (tail < la.length - head && tail < lb.length - head && la[la.length - 1 - tail] === lb[lb.length - 1 - tail]) tail++
  const middle = la.length + lb.length - 2 * (head + tail)
  const maxEditLength = Math.min(PATCH_EDIT_LIMIT, Math.floor(MATCHING_BUDGET / Math.max(1, middle)))
  if (maxEditLength < 1) return null
  const parts = diffArrays(la.slice(head, la.length - tail), lb.slice(head, lb.length - tail), { maxEditLength })
  if (!parts) return null
  // The changes as runs: where they start on each side, and what they take out and put in.
  const runs: { at: number; to: number; removed: string[]; added: string[] }[] = []
  let i = head
  let j = head
  for (const p of parts) {
    if (!p.added && !p.removed) {
      i += p.count ?? p.value.length
      j += p.count ?? p.value.length
      continue
    }
    const last = runs.at(-1)
    const run = last && last.at + last.removed.length === i && last.to + last.added.length === j ? last : runs[runs.push({ at: i, to: j, removed: [], added: [] }) - 1]
    if (p.removed) { run.removed.push(...p.value); i += p.value.length } else { run.added.push(...p.value); j += p.value.length }
  }
  const out: string[] = []
  const line = (sign: string, text: string) => {
    out.push(`${sign}${text.endsWith('\n') ? text.slice(0, -1) : text}`)
    if (!text.endsWith('\n')) out.push('\\ No newline at end of file')
  }
  for (let r = 0; r < runs.length;) {
    // One hunk: runs whose gaps are at most twice the context.
    let end = r
    while (end + 1 < runs.length && runs[end + 1].at - (runs[end].at + runs[end].removed.length) <= 2 * CONTEXT) end++
    const from = Math.max(0, runs[r].at - CONTEXT)
    const lastRun = runs[end]
    const until = Math.min(la.length, lastRun.at + lastRun.removed.length + CONTEXT)
    const shift = runs[r].to - runs[r].at
    const oldLines = until - from
    const newLines = oldLines + runs.slice(r, end + 1).reduce((n, x) => n + x.added.length - x.removed.length, 0)
    const start = (n: number, first: number) => (n === 0 ? first : first + 1)
    out.push(`@@ -${start(oldLines, from)},${oldLines} +${start(newLines, from + shift)},${newLines} @@`)
    let k = from
    for (let x = r; x <= end; x++) {
      for (; k < runs[x].at; k++) line(' ', la[k])
      for (const t of runs[x].removed) line('-', t)
      for (const t of runs[x].added) line('+', t)
      k += runs[x].removed.length
    }
    for (; k < until; k++) line(' ', la[k])
    r = end + 1
  }
  return out
}

/**
 * The patch from `before` to `after` (the editable files of a parent and of a candidate), laid out
 * as git's `diff --git` patches are (a header per changed file, `---`/`+++`, unified hunks with three
 * lines of context, `\ No newline at end of file`), computed in this process with jsdiff's line
 * matcher. `git apply` takes it, and a rebase's agent, a review and the swarm's search read it. It
 * is not git's patch byte for byte (the matcher may pair lines differently where a change is
 * ambiguous, and hunk headers carry no function names); what it must be is right: applied to
 * `before` it gives `after` (coordinator/test/git/patch.test.ts, with `git apply` as the judge).
 *
 * Null where git should be asked instead: a file git takes for binary (a NUL byte), or an edit
 * longer than PATCH_EDIT_LIMIT or costlier than MATCHING_BUDGET, or a file of more than MAX_LINES lines.
 */
export function patchOf(before: Record<string, string>, after: Record<string, string>): string | null {
  const out: string[] = []
  for (const name of [...new Set([...Object.keys(before), ...Object.keys(after)])].sort()) {
    const a = before[name]
    const b = after[name]
    if (a === b) continue
    if (a?.includes('\0') || b?.includes('\0')) return null
    const hunks = hunksOf(a ?? '', b ?? '')
    if (!hunks) return null
    out.push(`diff --git a/${name} b/${name}`)
    if (a === undefined) out.push('new file mode 100644')
    if (b === undefined) out.push('deleted file mode 100644')
    if (hunks.length) out.push(`--- ${a === undefined ? '/dev/null' : `a/${name}`}`, `+++ ${b === undefined ? '/dev/null' : `b/${name}`}`, ...hunks)
  }
  return out.length ? `${out.join('\n')}\n` : ''
}

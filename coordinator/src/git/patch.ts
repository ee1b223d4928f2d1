import { formatPatch, structuredPatch } from 'diff'

/**
 * Edits (lines added plus lines deleted) a report's patch may take in this process. An agent's
 * edit of train.py is a few dozen; the line matcher's cost grows with the number of edits times the
 * file's length, so a source rewritten wholesale (thousands of edits) goes to git's diff-tree
 * instead, off the event loop.
 */
export const PATCH_EDIT_LIMIT = 400

/**
 * The patch from `before` to `after` (the editable files of a parent and of a candidate), as git's
 * `diff --git` patches are laid out (a header per changed file, `---`/`+++`, unified hunks with three
 * lines of context, `\ No newline at end of file`), computed in this process by jsdiff's line
 * matcher. `git apply` takes it, and a rebase's agent, a review and the swarm's search read it. It
 * is not git's patch byte for byte (the matcher may pair lines differently where a change is
 * ambiguous, and hunk headers carry no function names); what it must be is right: applied to
 * `before` it gives `after` (coordinator/test/git/patch.test.ts, with `git apply` as the judge).
 *
 * Null where git should be asked instead: a file git takes for binary (a NUL byte), or an edit
 * longer than PATCH_EDIT_LIMIT.
 */
export function patchOf(before: Record<string, string>, after: Record<string, string>): string | null {
  const parts: string[] = []
  for (const name of [...new Set([...Object.keys(before), ...Object.keys(after)])].sort()) {
    const a = before[name]
    const b = after[name]
    if (a === b) continue
    if (a?.includes('\0') || b?.includes('\0')) return null
    const patch = structuredPatch(a === undefined ? '/dev/null' : `a/${name}`, b === undefined ? '/dev/null' : `b/${name}`, a ?? '', b ?? '', undefined, undefined,
      { context: 3, maxEditLength: PATCH_EDIT_LIMIT })
    if (!patch) return null
    parts.push(formatPatch({ ...patch, isGit: true, isCreate: a === undefined, isDelete: b === undefined }))
  }
  return parts.join('')
}

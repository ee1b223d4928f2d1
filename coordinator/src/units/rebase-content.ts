import type { SourceFiles } from '@autoresearch-grid/shared'

/**
 * Whether a rebase's code is its origin's change re-applied on the new best, line for line: the
 * condition for it to carry the origin's evidence (units/sequential-inputs.ts carriedEvidenceOf).
 *
 * A rebase unit asks a worker to re-apply a change A (its origin: `base` → `origin`) onto the best
 * (`parent`) where git could not merge it; any contributor's worker may take it, and nothing
 * checked what it reported. Under the sequential policies the report inherited the origin's
 * evidence and skipped the first-look screen, whatever its code: a hostile worker reported its own
 * change as a rival's rebase, and honest workers verified it with the rival's evidence behind it
 * (fourth red team, test/hostile/rebase-content.test.ts).
 *
 * Counted as multisets of lines per file (order aside), a three-way merge gives each line
 * parent + origin − base copies. A rebase carries A when no line has more copies than that (it adds
 * nothing A did not add), and none has fewer, except lines the best gained since A's base (the side
 * of a conflict resolved in A's favour). Anything else, a new line, a line of the best removed, a
 * line A added left out, makes it a change of its own, judged as an original.
 */
export function carriesChange(base: SourceFiles, origin: SourceFiles, parent: SourceFiles, result: SourceFiles): boolean {
  const count = (files: SourceFiles) => {
    const n = new Map<string, number>()
    for (const [file, text] of Object.entries(files)) for (const line of text.split('\n')) n.set(`${file}\0${line}`, (n.get(`${file}\0${line}`) ?? 0) + 1)
    return n
  }
  const [b, o, p, r] = [count(base), count(origin), count(parent), count(result)]
  const at = (m: Map<string, number>, k: string) => m.get(k) ?? 0
  for (const k of new Set([...b.keys(), ...o.keys(), ...p.keys(), ...r.keys()])) {
    const merged = Math.max(0, at(p, k) + at(o, k) - at(b, k))
    const gained = Math.max(0, at(p, k) - at(b, k))
    if (at(r, k) > merged || at(r, k) < merged - gained) return false
  }
  return true
}

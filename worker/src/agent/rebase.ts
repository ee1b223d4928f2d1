import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { execa } from 'execa'

/**
 * Re-applies a rebase unit's reference diff (a promising change made on an older best) to the
 * current best, deterministically, with git in the unit's workspace repository:
 *
 * 1. the base the diff was made from (the unit's `referenceBase`) is written into the repository's
 *    object store, so `git apply --3way` can fall back to a real three-way merge when the lines the
 *    diff touches moved or changed;
 * 2. `git apply --cached --3way` applies it to an index holding the current best (the working
 *    tree is never touched);
 * 3. where the best and the reference changed the same lines (the conflict that made the
 *    coordinator's own three-way merge give up), those hunks are resolved in favour of the
 *    reference: the rebase exists to re-apply that idea, and the ratchet measures whether the
 *    result still beats the best. Hunks only one side touched keep that side's change.
 *
 * Null when the diff does not apply at all (no base, and its context is gone): the caller falls
 * back to re-implementing the idea another way.
 */
export interface Reapplied {
  files: Record<string, string>
  /** `clean`, `three-way` or `three-way, conflicts resolved for the reference`. */
  how: string
}

export async function reapplyDiff(o: { dir: string; files: Record<string, string>; diff: string; base?: Record<string, string> | null }): Promise<Reapplied | null> {
  if (!o.diff.trim()) return null
  // Exact bytes: file contents come back through stdout.
  const git = (args: string[], input?: string) => execa('git', args, { cwd: o.dir, reject: false, input, stdin: input === undefined ? 'ignore' : undefined, stripFinalNewline: false })
  if ((await git(['rev-parse', '--git-dir'])).exitCode !== 0) return null
  const hash = async (text: string) => (await git(['hash-object', '-w', '--stdin'], text)).stdout.trim()
  for (const text of Object.values(o.base ?? {})) await hash(text)
  // The index becomes exactly the current best's files; restored from HEAD afterwards.
  await git(['read-tree', '--empty'])
  for (const [name, text] of Object.entries(o.files)) await git(['update-index', '--add', '--cacheinfo', `100644,${await hash(text)},${name}`])
  try {
    const applied = await git(['apply', '--cached', '--3way', '--whitespace=nowarn', '-'], o.diff.endsWith('\n') ? o.diff : `${o.diff}\n`)
    const unmerged = (await git(['ls-files', '-u', '-z'])).stdout.split('\0').filter(l => l.trim())
    const conflicted = [...new Set(unmerged.map(l => l.slice(l.indexOf('\t') + 1)))]
    if (applied.exitCode !== 0 && conflicted.length === 0) return null
    const files = { ...o.files }
    for (const name of Object.keys(o.files)) {
      if (conflicted.includes(name)) {
        const stage = async (n: number) => (await git(['show', `:${n}:${name}`])).stdout
        files[name] = await favourReference(await stage(1), await stage(2), await stage(3))
      } else {
        const shown = await git(['show', `:${name}`])
        if (shown.exitCode === 0) files[name] = shown.stdout
      }
    }
    // git says which way it went: with the base at hand it merges, without it it patches directly.
    const threeWay = /Performing three-way merge/.test(applied.stderr) && !/Falling back to direct application/.test(applied.stderr)
    return { files, how: conflicted.length ? 'three-way, conflicts resolved for the reference' : threeWay ? 'three-way' : 'clean' }
  } finally {
    if ((await git(['read-tree', 'HEAD'])).exitCode !== 0) await git(['read-tree', '--empty'])
  }
}

/** `git merge-file --theirs`: both sides' changes, and the reference's where they overlap. */
async function favourReference(base: string, ours: string, theirs: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'arg-rebase-'))
  try {
    await Promise.all([writeFile(join(dir, 'ours'), ours), writeFile(join(dir, 'base'), base), writeFile(join(dir, 'theirs'), theirs)])
    await execa('git', ['merge-file', '--theirs', '--quiet', join(dir, 'ours'), join(dir, 'base'), join(dir, 'theirs')], { reject: false, stdin: 'ignore' })
    return await readFile(join(dir, 'ours'), 'utf8')
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

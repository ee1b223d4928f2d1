import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { execa } from 'execa'

/**
 * Three-way merge of one file's text with `git merge-file`: the change from `base` to `theirs`
 * applied on top of `ours`. Null when the two changes touch the same lines.
 */
export async function mergeText(base: string, ours: string, theirs: string): Promise<string | null> {
  if (ours === base) return theirs
  if (theirs === base || theirs === ours) return ours
  const dir = await mkdtemp(join(tmpdir(), 'arg-merge-'))
  try {
    await Promise.all([writeFile(join(dir, 'ours'), ours), writeFile(join(dir, 'base'), base), writeFile(join(dir, 'theirs'), theirs)])
    const r = await execa('git', ['merge-file', '--quiet', join(dir, 'ours'), join(dir, 'base'), join(dir, 'theirs')], { reject: false, stdin: 'ignore' })
    if (r.exitCode !== 0) return null
    return await readFile(join(dir, 'ours'), 'utf8')
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

import { lstat, rm } from 'node:fs/promises'
import { execa } from 'execa'

/**
 * Removes a file or a folder tree that campaign code may have written: a run folder's contents, a
 * compile cache, a model server's scratch. Node's rm names every entry by its full path, so a tree
 * deeper than PATH_MAX (4,096 bytes; a train.py makes one a chdir at a time) defeats it with
 * ENAMETOOLONG, and a run folder that could not be emptied failed every later experiment of the
 * worker. coreutils' rm walks the tree with openat, at any depth, and with --one-file-system stays
 * on the tree's own mount. Folders the run made unreadable (mode 000: the sandbox's user is the
 * worker's own outside) are made the owner's again first, with chmod -R, which follows no link
 * inside the tree; a link itself is never handed to it.
 */
export async function removeTree(path: string): Promise<void> {
  try {
    await rm(path, { recursive: true, force: true })
  } catch (err) {
    if ((await lstat(path).catch(() => null))?.isDirectory()) await execa('chmod', ['-R', 'u+rwx', '--', path], { reject: false, stdin: 'ignore' })
    const flags = process.platform === 'linux' ? ['-rf', '--one-file-system'] : ['-rf']
    const r = await execa('rm', [...flags, '--', path], { reject: false, stdin: 'ignore' })
    if (r.exitCode !== 0) throw new Error(`cannot remove ${path} (${(err as Error).message}): rm says ${String(r.stderr).trim()}`)
  }
}

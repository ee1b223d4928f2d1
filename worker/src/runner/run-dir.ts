import { chmod, copyFile, mkdir, readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { removeTree } from './remove-tree.ts'

export interface PrepareRunDirOptions {
  /** Emptied and refilled: a run never sees files from the previous one. */
  runDir: string
  /** The unit's editable files by name, e.g. `{ 'train.py': '...' }`. */
  files: Record<string, string>
  /** The trainer checkout that holds the locked files. */
  trainerDir: string
  /** Files copied from `trainerDir`, read-only; the unit may not supply them. */
  lockedFiles?: readonly string[]
}

export const DEFAULT_LOCKED_FILES = ['prepare.py'] as const

/** A plain file name: no directories, no `.`/`..`, nothing hidden. */
function checkFileName(name: string): void {
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/.test(name)) {
    throw new Error(`refusing to write "${name}" into the run directory: unit files must be plain names like train.py`)
  }
}

/** Makes `runDir` (made if missing) empty of whatever the last run left there, which is hostile. */
export async function emptyRunDir(runDir: string): Promise<void> {
  await mkdir(runDir, { recursive: true })
  // The sandbox's user is the worker's own outside, so a run may have made the folder unreadable
  // (mode 000): the worker owns it and makes it its own again. removeTree copes with the rest
  // (folders of mode 000, trees no path can name).
  await chmod(runDir, 0o755).catch(() => {}) // not ours to change: the readdir below says why
  for (const entry of await readdir(runDir)) await removeTree(join(runDir, entry))
  // readdir names entries in UTF-8: one that is not (a byte 0xff) came back as U+FFFD, its removal
  // found nothing, and the file stayed for the next run, of anyone's code (through the runner and
  // bwrap, a second run read what the first left so). What is left goes with the folder
  // (coreutils' rm takes any bytes).
  if ((await readdir(runDir, { encoding: 'buffer' })).length) {
    await removeTree(runDir)
    await mkdir(runDir, { recursive: true })
  }
}

/**
 * Builds the directory a trainer runs in: the unit's files plus *copies* of the locked files, made
 * read-only, so whatever the agent or the trainer does there cannot touch the originals.
 */
export async function prepareRunDir(options: PrepareRunDirOptions): Promise<{ runDir: string; files: string[] }> {
  const locked = options.lockedFiles ?? DEFAULT_LOCKED_FILES
  for (const name of Object.keys(options.files)) {
    checkFileName(name)
    if (locked.includes(name)) throw new Error(`the unit supplies ${name}, which is locked: only the worker's own copy from ${options.trainerDir} is used`)
  }
  await emptyRunDir(options.runDir)
  for (const [name, text] of Object.entries(options.files)) await writeFile(join(options.runDir, name), text)
  for (const name of locked) {
    const target = join(options.runDir, name)
    try {
      await copyFile(join(options.trainerDir, name), target)
    } catch (err) {
      throw new Error(`cannot copy locked ${name} from ${options.trainerDir} (${(err as Error).message}); is the trainer directory right?`)
    }
    await chmod(target, 0o444)
  }
  return { runDir: options.runDir, files: [...Object.keys(options.files), ...locked].sort() }
}

import { closeSync, existsSync, mkdirSync, openSync, readdirSync, renameSync, rmSync, statSync, unlinkSync, writeSync } from 'node:fs'
import { dirname, join } from 'node:path'

/**
 * A ref name this process writes itself: `refs/` and path components of plain characters, none
 * empty, none starting with a dot or ending in `.lock` (a subset of git-check-ref-format(1), so the
 * name is also a safe path inside the repository). Anything else goes to git's update-ref.
 */
const SIMPLE_REF = /^refs(\/(?!\.)[A-Za-z0-9_.-]+)+$/

export function isSimpleRef(ref: string): boolean {
  return SIMPLE_REF.test(ref) && !ref.includes('..') && !ref.split('/').some(part => part.endsWith('.lock') || part.endsWith('.'))
}

/**
 * Moves refs the way git's files backend does (gitrepository-layout(5), "refs"; refs/files-backend.c):
 * `<ref>.lock` created exclusively, the object id and a newline written to it, then renamed over
 * the ref. A loose ref overrides the same name in packed-refs, so this is right whether or not git
 * packed the ref earlier; git processes that move the same ref take the same lock, so a writer
 * that finds it held fails, as update-ref would, instead of overwriting.
 *
 * Why not git: every report named its experiment's commit (`refs/experiments/<id>`) this way, and a
 * request to the long-running update-ref cost the coordinator a pipe round trip and git ~0.4 ms of
 * CPU per ref (process wake-ups; git's own work is ~0.12 ms a ref in a batch): docs/PERFORMANCE.md,
 * "Third pass". Since the seventh pass those refs are written after the report's transaction, in
 * batches of a 50 ms window, by update-ref (git/ref-batch.ts); this writes branches and the refs
 * restored at start. Only for the files backend (git 2.39's only one): GitStore sends every ref of a
 * repository whose refs live in a reftable (git 2.45+, `<git dir>/reftable`) to update-ref.
 *
 * Only `write` checks what update-ref would: the ref name (isSimpleRef) and that the object is
 * there: one this process wrote (GitStore's packs, git/pack.ts) or a loose object
 * (`objects/<2 hex>/<rest>`); any other object is left to git.
 * Durability is update-ref's under git 2.39's defaults: no fsync (`core.fsync` leaves refs out).
 */
export class LooseRefs {
  /** Folders known to exist (`refs/experiments`, `refs/heads`, …). */
  private readonly folders = new Set<string>()

  /** `written`: whether this process wrote the object and it is in place (GitStore: in one of its packs). */
  constructor(private readonly gitDir: string, private readonly written: (id: string) => boolean = () => false) {}

  /** Whether `write` can move this ref to this object (else: git's update-ref). */
  canWrite(ref: string, id: string): boolean {
    return isSimpleRef(ref) && (this.written(id) || existsSync(join(this.gitDir, 'objects', id.slice(0, 2), id.slice(2))))
  }

  /** Points `ref` at `id`, unconditionally. */
  write(ref: string, id: string): void {
    const path = join(this.gitDir, ref)
    const folder = dirname(path)
    if (!this.folders.has(folder)) {
      mkdirSync(folder, { recursive: true })
      this.folders.add(folder)
    }
    const lock = `${path}.lock`
    let fd: number
    try {
      fd = openSync(lock, 'wx', 0o666)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      throw new Error(`cannot move ${ref}: ${lock} exists, so another git process is moving it; if none is running, a crashed one left the file behind and it may be removed`)
    }
    try {
      writeSync(fd, `${id}\n`)
      closeSync(fd)
      fd = -1
      // Fails if a folder has the ref's name (refs/x/y exists, refs/x is asked for), as git would.
      renameSync(lock, path)
    } catch (err) {
      if (fd >= 0) closeSync(fd)
      unlinkSync(lock)
      throw err
    }
  }
}

/**
 * The ref lock files (`refs/**\/*.lock`, `packed-refs.lock`, `HEAD.lock`) a crashed process left in
 * a store only this coordinator writes: removed when it opens the store, or the first ref it moves
 * (the branch, at start) is refused and the coordinator cannot start after a kill -9 that came
 * while a ref was being written (coordinator/test/faults/kill-coordinator.test.ts found it). A lock
 * younger than `settleMs` may still belong to a git process of the crashed coordinator that is
 * ending (it removes its own locks when its input closes): it is given that long to go first.
 * Returns the locks removed.
 */
export async function removeStaleLocks(gitDir: string, settleMs = 2000, now = Date.now): Promise<string[]> {
  const found: string[] = []
  for (const f of ['packed-refs.lock', 'HEAD.lock']) if (existsSync(join(gitDir, f))) found.push(join(gitDir, f))
  if (existsSync(join(gitDir, 'refs'))) {
    for (const e of readdirSync(join(gitDir, 'refs'), { recursive: true, withFileTypes: true })) {
      if (e.isFile() && e.name.endsWith('.lock')) found.push(join(e.parentPath ?? (e as unknown as { path: string }).path, e.name))
    }
  }
  const removed: string[] = []
  for (const lock of found) {
    for (;;) {
      let age: number
      try {
        age = now() - statSync(lock).mtimeMs
      } catch {
        break // gone: its owner finished
      }
      if (age >= settleMs) {
        rmSync(lock, { force: true })
        removed.push(lock)
        break
      }
      await new Promise(r => setTimeout(r, 100))
    }
  }
  return removed
}

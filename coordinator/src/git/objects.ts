import { createHash } from 'node:crypto'
import { closeSync, existsSync, mkdirSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { deflateSync } from 'node:zlib'

/** The object format of a repository (`extensions.objectFormat`): git's default, or SHA-256. */
export type ObjectFormat = 'sha1' | 'sha256'

export type ObjectType = 'blob' | 'tree' | 'commit'

/**
 * What git stores for an object and names it by (gitformat-loose(5), "Object format"): the
 * header `<type> <size>\0`, then the body. The object id is the hash of exactly these bytes.
 */
export function objectBytes(type: ObjectType, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`${type} ${body.length}\0`), body])
}

export function objectId(format: ObjectFormat, bytes: Buffer): string {
  return createHash(format).update(bytes).digest('hex')
}

/**
 * A tree of plain files (gitformat-tree: entries `<mode> <name>\0<binary id>`, sorted by name).
 * Only regular files: with no sub-trees, git's order is the plain byte order of the names.
 */
export function treeBody(entries: { name: string; id: string }[]): Buffer {
  const sorted = [...entries].sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)))
  return Buffer.concat(sorted.flatMap(e => [Buffer.from(`100644 ${e.name}\0`), Buffer.from(e.id, 'hex')]))
}

/**
 * zlib's window and memory sized to the object (git inflates any window up to its own 32 KB):
 * with the defaults, each deflateSync set up ~270 KB of state, most of a tree's or commit's cost
 * (20-80 µs against 10-25 µs sized, docs/PERFORMANCE.md, "Third pass"). A window as large as the
 * object finds every match the default one would; train.py (28 KB) gets the defaults.
 */
export function deflateOptions(size: number): { level: number; windowBits: number; memLevel: number } {
  const windowBits = Math.max(9, Math.min(15, Math.ceil(Math.log2(size + 1))))
  return { level: 1, windowBits, memLevel: Math.max(1, Math.min(8, windowBits - 7)) }
}

/**
 * Writes `bytes` to a new file at `path`, read-only as git leaves objects, created exclusively:
 * false (nothing written) if the name is taken, so a leftover of an earlier process is skipped over.
 * A file half written is removed.
 */
export function writeNewFileSync(path: string, bytes: Buffer): boolean {
  let fd: number
  try {
    fd = openSync(path, 'wx', 0o444)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false
    throw err
  }
  try {
    for (let at = 0; at < bytes.length;) at += writeSync(fd, bytes, at, bytes.length - at)
  } catch (err) {
    closeSync(fd)
    unlinkSync(path)
    throw err
  }
  closeSync(fd)
  return true
}

/**
 * Writes objects into a repository's object store from this process, as git itself would write
 * a loose object: zlib-deflated header and body at `objects/<first 2 hex>/<rest>`, written to a
 * temporary file in that folder and renamed into place, so a reader never sees half an object and
 * two writers of the same object both leave a whole one. The compression level is git's default
 * for loose objects (`core.looseCompression`, 1: speed first), the window sized to the object
 * (deflateOptions).
 *
 * Why not git: each report writes a blob, a tree and a commit; handing them to `hash-object` and
 * `mktree` processes cost a scratch file and three pipe round trips per report, and the git
 * processes took half a core of this 2-core machine beside the coordinator at a few dozen reports
 * a second (docs/PERFORMANCE.md, "Coordinator under load"). Hashing and deflating a 23 KB
 * train.py here takes a fraction of a millisecond.
 *
 * Temporary names are this process's id and a counter (`tmp_obj_arg_<pid>_<n>`), not random
 * bytes: created exclusively, so a leftover of an earlier process with the same id is skipped
 * over, never reused. Random names cost a call into the CSPRNG per object (in the V8 profile of
 * bench/coordinator/ops.ts, ~0.17 ms a report).
 *
 * Durability is what `hash-object` gave: git 2.39 does not fsync loose objects by default
 * (`core.fsync` leaves them out), and neither does this. The caller moves a ref to an object only
 * after writing it, so a killed coordinator leaves at worst an unreferenced object.
 */
export class LooseObjects {
  /** Fan-out folders known to exist (256 at most). */
  private readonly folders = new Set<string>()
  private made = 0

  constructor(private readonly gitDir: string, readonly format: ObjectFormat) {}

  /** Writes one object (if the store lacks it) and returns its id. */
  write(type: ObjectType, body: Buffer): string {
    const bytes = objectBytes(type, body)
    const id = objectId(this.format, bytes)
    const folder = join(this.gitDir, 'objects', id.slice(0, 2))
    const path = join(folder, id.slice(2))
    // Content-addressed: an object that is there already is this very object.
    if (existsSync(path)) return id
    if (!this.folders.has(folder)) {
      mkdirSync(folder, { recursive: true })
      this.folders.add(folder)
    }
    const data = deflateSync(bytes, deflateOptions(bytes.length))
    renameSync(this.temporary(folder, data), path)
    return id
  }

  /** A new file of ours in `folder` holding `data`, one object's bytes until it is renamed into place. */
  private temporary(folder: string, data: Buffer): string {
    for (;;) {
      const tmp = join(folder, `tmp_obj_arg_${process.pid}_${this.made++}`)
      if (writeNewFileSync(tmp, data)) return tmp
    }
  }

  blob(text: string): string {
    return this.write('blob', Buffer.from(text))
  }

  tree(entries: { name: string; id: string }[]): string {
    return this.write('tree', treeBody(entries))
  }

  commit(text: string): string {
    return this.write('commit', Buffer.from(text))
  }
}

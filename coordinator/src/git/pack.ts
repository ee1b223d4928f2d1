import { createHash } from 'node:crypto'
import { spawn } from 'node:child_process'
import { unlink } from 'node:fs/promises'
import fs, { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import * as zlib from 'node:zlib'
import { deflateOptions, objectBytes, objectId, writeNewFileSync, type ObjectFormat, type ObjectType } from './objects.ts'

/**
 * CRC-32 (the zlib polynomial, as the pack index wants it): Node's own where it has one (20.15 and
 * later), else a table here. A namespace import, so a Node without `zlib.crc32` still loads this
 * module (a named import of a missing export fails the coordinator's start, packs or not).
 */
const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
  return c >>> 0
})
export function tableCrc32(data: Buffer, value = 0): number {
  let c = (value ^ 0xffffffff) >>> 0
  for (const byte of data) c = CRC_TABLE[(c ^ byte) & 0xff] ^ (c >>> 8)
  return (c ^ 0xffffffff) >>> 0
}
const crc32: (data: Buffer, value?: number) => number = (zlib as { crc32?: (d: Buffer, v?: number) => number }).crc32 ?? tableCrc32

/** gitformat-pack(5): the 3-bit object type of a pack entry's header. */
const PACK_TYPE: Record<ObjectType, number> = { commit: 1, tree: 2, blob: 3 }

/** One object as it goes into a pack: its id and its body (without the loose `<type> <size>\0` header). */
export interface PackEntry { id: string; type: ObjectType; body: Buffer }

/**
 * A pack entry's header (gitformat-pack(5), "Object types"): the first byte holds a continuation
 * bit, the type in bits 6-4 and the size's low 4 bits; each following byte a continuation bit and
 * the next 7 bits of the size, least significant first.
 */
function entryHeader(type: ObjectType, size: number): Buffer {
  const out: number[] = []
  let byte = (PACK_TYPE[type] << 4) | (size & 0x0f)
  let rest = Math.floor(size / 16)
  while (rest > 0) {
    out.push(byte | 0x80)
    byte = rest & 0x7f
    rest = Math.floor(rest / 128)
  }
  out.push(byte)
  return Buffer.from(out)
}

function uint32(n: number): Buffer {
  const b = Buffer.alloc(4)
  b.writeUInt32BE(n >>> 0)
  return b
}

/**
 * A pack of whole (undeltified) objects and its version-2 index, as gitformat-pack(5) describes
 * them. The pack: `PACK`, version 2, the object count, each object as its type-and-size header and
 * its zlib-deflated body, then the hash (SHA-1 or SHA-256, the repository's) of all of that. The
 * index: the magic `\377tOc`, version 2, a 256-entry fan-out table (how many ids begin with a byte
 * up to each value), the ids sorted, the CRC32 of each entry's packed bytes (header and deflated
 * data), each entry's offset in the pack (31 bits; a larger one names a slot of the 8-byte table
 * that follows), the pack's hash and the hash of the index itself. `name` is the pack's hash in hex,
 * which is what git names it by (`pack-<name>.pack`). Ids must be distinct.
 */
export function buildPack(format: ObjectFormat, entries: PackEntry[]): { name: string; pack: Buffer; idx: Buffer } {
  const parts: Buffer[] = [Buffer.from('PACK'), uint32(2), uint32(entries.length)]
  let offset = 12
  const placed: { id: Buffer; crc: number; offset: number }[] = []
  for (const e of entries) {
    const head = entryHeader(e.type, e.body.length)
    const data = zlib.deflateSync(e.body, deflateOptions(e.body.length))
    placed.push({ id: Buffer.from(e.id, 'hex'), crc: crc32(data, crc32(head)), offset })
    parts.push(head, data)
    offset += head.length + data.length
  }
  const body = Buffer.concat(parts)
  const trailer = createHash(format).update(body).digest()
  const pack = Buffer.concat([body, trailer])

  placed.sort((a, b) => Buffer.compare(a.id, b.id))
  const fanout = Buffer.alloc(256 * 4)
  let at = 0
  for (let byte = 0; byte < 256; byte++) {
    while (at < placed.length && placed[at].id[0] === byte) at++
    fanout.writeUInt32BE(at, byte * 4)
  }
  const crcs = Buffer.alloc(placed.length * 4)
  const offsets = Buffer.alloc(placed.length * 4)
  const large: Buffer[] = []
  placed.forEach((p, i) => {
    crcs.writeUInt32BE(p.crc >>> 0, i * 4)
    if (p.offset < 0x80000000) offsets.writeUInt32BE(p.offset, i * 4)
    else {
      offsets.writeUInt32BE((0x80000000 | large.length) >>> 0, i * 4)
      const b = Buffer.alloc(8)
      b.writeBigUInt64BE(BigInt(p.offset))
      large.push(b)
    }
  })
  const idxBody = Buffer.concat([Buffer.from([0xff, 0x74, 0x4f, 0x63]), uint32(2), fanout, ...placed.map(p => p.id), crcs, offsets, ...large, trailer])
  const idx = Buffer.concat([idxBody, createHash(format).update(idxBody).digest()])
  return { name: trailer.toString('hex'), pack, idx }
}

/**
 * Writes `bytes` to a new file at `path` (false if the name is taken) through fs's callbacks, each
 * step on libuv's threads: on this VM creating a file is ~0.55 ms of kernel time, which the event
 * loop no longer pays; the promise API cost the event loop twice the callbacks' ~70 µs a file
 * (docs/PERFORMANCE.md, "Eighth pass").
 */
function writeNewFile(path: string, bytes: Buffer): Promise<boolean> {
  return new Promise((resolve, reject) => {
    fs.open(path, 'wx', 0o444, (err, fd) => {
      if (err) return err.code === 'EEXIST' ? resolve(false) : reject(err)
      const fail = (e: Error) => fs.close(fd, () => fs.unlink(path, () => reject(e)))
      const from = (at: number): void => {
        fs.write(fd, bytes, at, bytes.length - at, null, (e, n) => {
          if (e) return fail(e)
          if (at + n < bytes.length) return from(at + n)
          fs.close(fd, e2 => (e2 ? fs.unlink(path, () => reject(e2)) : resolve(true)))
        })
      }
      from(0)
    })
  })
}

/** fs.rename through its callback (see writeNewFile). */
function rename(from: string, to: string): Promise<void> {
  return new Promise((resolve, reject) => fs.rename(from, to, err => (err ? reject(err) : resolve())))
}

/** How a pack's files are made: by libuv's threads (the default), or on the event loop (`syncWrites`). */
interface PackFiles {
  writeNew(path: string, bytes: Buffer): Promise<boolean>
  rename(from: string, to: string): Promise<void>
}
const THREADED: PackFiles = { writeNew: writeNewFile, rename }
const ON_THE_LOOP: PackFiles = { writeNew: async (path, bytes) => writeNewFileSync(path, bytes), rename: async (from, to) => fs.renameSync(from, to) }

export interface PackedObjectsOptions {
  /**
   * How long objects asked for may wait for others to share their pack: 0 (the default) writes
   * what was asked for in this turn of the event loop, at the next `setImmediate`; more waits that
   * many milliseconds.
   */
  windowMs?: number
  /** Packs written since the last repack that start one (`git repack -d -n --geometric=2`); 0: never. */
  repackAfter?: number
  /** The environment of the repack's git. */
  env?: Record<string, string>
  /** Told of each repack's end (tests, logs). */
  onRepack?: (result: { ok: boolean; ms: number; packsBefore: number }) => void
  /** Told of the ids of each pack once it is in place (a staging store drops its copies). */
  onWritten?: (ids: string[]) => void
  /**
   * What a pack that failed to be written does: by default its objects' promises reject, and they
   * are written again only if asked for again. With `retry` (a staging store keeps the objects
   * meanwhile) they are queued again into the next window, and their promises resolve only once a
   * later pack holds them: they never reject.
   */
  retry?: boolean
  /**
   * Writes each pack's two files on the event loop instead of libuv's threads: for long windows,
   * where a pack holds many reports' objects and costs ~1 ms a window. On libuv's threads, under the
   * load benchmark at 10,000 workers, the packs' file calls queued behind the database's syncs and
   * everything else of the pool: 6 packs on their way and 2,000 commits' files waiting after 4 s,
   * and the coordinator's memory grew past 1.2 GB (docs/PERFORMANCE.md, "Thirteenth pass").
   */
  syncWrites?: boolean
}

/** What `known` holds for an object whose pack is in place. */
const IN_PLACE: Promise<void> = Promise.resolve()

/** A pack that keeps failing (a full disk) is logged once in this many tries: every 10 s at a 200 ms window. */
const RETRY_LOG_EVERY = 50

/** How many ids `PackedObjects` remembers as written before it forgets them all (a cache: a miss costs a duplicate object). */
const KNOWN_MAX = 200_000

/**
 * Writes objects into a repository's object store from this process, as packs: every object asked
 * for within one window (one turn of the event loop by default) goes into one pack file and its
 * index (buildPack), each written under a temporary name in `objects/pack/` and renamed into place,
 * the pack first and the index last: git finds a pack by its index, so a reader sees a whole pack
 * or none (a long-running cat-file or diff-tree that misses an object re-reads the pack folder).
 * `add` returns the object's id at once and a promise that resolves when the pack holding it is in
 * place.
 *
 * Why packs: three loose objects a report (blob, tree, commit) were three temporary files created,
 * written and renamed on the event loop; `open` alone was ~19 % of the main thread's samples in
 * bench/coordinator/ops.ts (docs/PERFORMANCE.md, "Seventh pass"). A batch is now two files written
 * by libuv's threads; the event loop hashes, deflates and builds the pack in memory.
 *
 * Duplicates: an object asked for again while its pack is being written waits for that pack; one
 * written by this process since it started (up to KNOWN_MAX ids) is not written again. An object
 * an earlier process wrote may be written once more, in a new pack: git allows an object in several
 * packs, and a repack keeps one copy.
 *
 * Repacks: many small packs slow git's lookups (each pack's index is searched in turn), so after
 * `repackAfter` packs a `git -c pack.window=0 repack -d -q -n --geometric=2` runs in the background, one at a time: it
 * rolls the small packs into one, keeping a geometric progression of sizes, and deletes the packs it
 * rolled up. It packs exactly the objects of the packs it rolls up, reachable or not: objects
 * written before their ref (a report's commit, whose ref comes after the transaction, and the
 * store's unreferenced end-of-diff commit) are kept. `repack -a -d` would drop them.
 *
 * Durability is what loose objects had here: not fsynced (git 2.39 does not fsync loose objects by
 * default, and the loose writer did not either), so an object survives this process's crash once
 * its promise resolved, not necessarily the machine's. The caller moves a ref to an object only
 * after its promise resolved, so a killed coordinator leaves at worst an unreferenced pack, or a
 * temporary file `git gc` removes.
 */
export class PackedObjects {
  /** Ids in a pack (or in a pack's write) of this process, each with the promise of its pack. */
  private readonly known = new Map<string, Promise<void>>()
  private waiting: PackEntry[] = []
  private waitingDone: Promise<void> | null = null
  /** Starts the waiting objects' pack now instead of at the window's end. */
  private startNow: (() => void) | null = null
  /** Cancels the waiting objects' window and lets its waiters go (close, with `retry`: they stay staged). */
  private cancelWindow: (() => void) | null = null
  private closed = false
  /** Packs that failed in a row (with `retry`): the first is logged, then one in RETRY_LOG_EVERY, and the recovery. */
  private failing = 0
  private inFlight = new Set<Promise<void>>()
  /** The last pack's write: packs are written one after another, so one in place means every earlier one is. */
  private chain: Promise<void> = IN_PLACE
  private made = 0
  private readonly packDir: string
  private readonly files: PackFiles
  private packsSinceRepack = 0
  private repack: Promise<void> | null = null
  /** Repacks that ended, and packs this process wrote. */
  repacks = 0
  packsWritten = 0

  constructor(private readonly gitDir: string, readonly format: ObjectFormat, private readonly opts: PackedObjectsOptions = {}) {
    this.packDir = join(gitDir, 'objects', 'pack')
    this.files = opts.syncWrites ? ON_THE_LOOP : THREADED
    mkdirSync(this.packDir, { recursive: true })
  }

  /**
   * Queues one object (unless written or queued already) and returns its id, when it is in place,
   * and whether this call queued it (false: an earlier one did, or its pack is in place).
   */
  add(type: ObjectType, body: Buffer): { id: string; written: Promise<void>; queued: boolean } {
    const id = objectId(this.format, objectBytes(type, body))
    const known = this.known.get(id)
    if (known) return { id, written: known, queued: false }
    return { id, written: this.queue({ id, type, body }), queued: true }
  }

  private queue(entry: PackEntry): Promise<void> {
    if (!this.waitingDone) this.waitingDone = this.schedule()
    const written = this.waitingDone
    this.waiting.push(entry)
    if (this.known.size >= KNOWN_MAX) this.forgetWritten()
    this.known.set(entry.id, written)
    return written
  }

  /** Forgets the ids whose packs are in place (never one still on its way: `due` must not call it in place). */
  private forgetWritten(): void {
    for (const [id, p] of this.known) if (p === IN_PLACE) this.known.delete(id)
  }

  /** The objects waiting are written at the window's end, or when `flushNow` asks; resolves when they are in place. */
  private schedule(): Promise<void> {
    const done = new Promise<void>((resolve, reject) => {
      let started = false
      const go = () => {
        if (started) return
        started = true
        cancel()
        this.startNow = this.cancelWindow = null
        this.write().then(resolve, reject)
      }
      const cancel = this.opts.windowMs ? clearTimeout.bind(null, setTimeout(go, this.opts.windowMs)) : clearImmediate.bind(null, setImmediate(go))
      this.startNow = go
      // Closing: the window is not written, and whoever waits for it is let go (its stage keeps the objects).
      this.cancelWindow = () => { started = true; cancel(); this.startNow = this.cancelWindow = null; resolve() }
    })
    // With `retry` nothing rejects it but a fault of this code: a caller that does not wait for it must not crash the process.
    if (this.opts.retry) done.catch(err => console.error(`git store: writing packs failed: ${(err as Error).message}`))
    return done
  }

  /**
   * The owner is closing: no callback and no repack from now on. With `retry`, objects still
   * waiting for their window are not written (their stage keeps them for the next start); without,
   * they are, as their callers wait for them.
   */
  close(): void {
    this.closed = true
    if (this.opts.retry) this.cancelWindow?.()
  }

  /** Whether a repack is running now. */
  get repacking(): boolean {
    return this.repack !== null
  }

  /** Whether this process wrote an object of this id and its pack is in place. */
  has(id: string): boolean {
    return this.known.get(id) === IN_PLACE
  }

  /** The promise of an object queued or on its way, or null (in place, or never queued here). */
  due(id: string): Promise<void> | null {
    const p = this.known.get(id)
    return p && p !== IN_PLACE ? p : null
  }

  /** Whether any object is queued or on its way. */
  get pending(): boolean {
    return this.waitingDone !== null || this.inFlight.size > 0
  }

  /** Resolves when the packs on their way are in place (or failed); starts none. */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.inFlight])
  }

  /** Starts the waiting objects' pack now (a reader needs them); resolves when every pack asked for is in place. */
  async flushNow(): Promise<void> {
    this.startNow?.()
    await this.settled()
  }

  /** Resolves when every pack asked for so far is in place and no repack is running. */
  async idle(): Promise<void> {
    for (;;) {
      const pending = [...this.inFlight, ...(this.waitingDone ? [this.waitingDone] : []), ...(this.repack ? [this.repack] : [])]
      if (!pending.length) return
      await Promise.allSettled(pending)
    }
  }

  private async write(): Promise<void> {
    const entries = this.waiting
    this.waiting = []
    this.waitingDone = null
    const done = this.chain.then(() => this.writePack(entries))
    this.chain = done.catch(() => {})
    this.inFlight.add(done)
    try {
      await done
    } catch (err) {
      for (const e of entries) this.known.delete(e.id)
      if (!this.opts.retry) throw err
      if (this.closed) return
      // Kept by the caller's stage meanwhile: queued again into the next window, which this waits for.
      if (this.failing++ % RETRY_LOG_EVERY === 0)
        console.error(`git store: a pack of ${entries.length} objects was not written (${(err as Error).message}); it is tried again every window (${this.failing} failed in a row)`)
      for (const e of entries) if (!this.known.has(e.id)) this.queue(e)
      await this.waitingDone
      return
    } finally {
      this.inFlight.delete(done)
    }
    for (const e of entries) if (this.known.has(e.id)) this.known.set(e.id, IN_PLACE)
    if (this.closed) return
    this.opts.onWritten?.(entries.map(e => e.id))
    if (this.failing) console.error(`git store: packs are written again, after ${this.failing} that failed`)
    this.failing = 0
    this.packsWritten++
    this.packsSinceRepack++
    if (this.opts.repackAfter && this.packsSinceRepack >= this.opts.repackAfter && !this.repack) this.startRepack()
  }

  private async writePack(entries: PackEntry[]): Promise<void> {
    const { name, pack, idx } = buildPack(this.format, entries)
    const packTmp = await this.writeTemporary('pack', pack)
    let idxTmp: string | null = null
    try {
      idxTmp = await this.writeTemporary('idx', idx)
      await this.files.rename(packTmp, join(this.packDir, `pack-${name}.pack`))
      await this.files.rename(idxTmp, join(this.packDir, `pack-${name}.idx`))
    } catch (err) {
      await unlink(packTmp).catch(() => {})
      if (idxTmp) await unlink(idxTmp).catch(() => {})
      throw err
    }
  }

  /**
   * `bytes` in a new file of ours in objects/pack, read-only as git leaves packs, named with this
   * process's id and a counter (`tmp_pack_arg_<pid>_<n>`, created exclusively: a leftover of an
   * earlier process is skipped over) and a `tmp_` prefix that git's gc knows to clean up.
   */
  private async writeTemporary(kind: 'pack' | 'idx', bytes: Buffer): Promise<string> {
    for (;;) {
      const tmp = join(this.packDir, `tmp_${kind}_arg_${process.pid}_${this.made++}`)
      if (await this.files.writeNew(tmp, bytes)) return tmp
    }
  }

  /** One `git repack -d -q -n --geometric=2` in the background; its failure is logged, never thrown. */
  private startRepack(): void {
    const packsBefore = this.packsSinceRepack
    this.packsSinceRepack = 0
    const started = Date.now()
    this.repack = new Promise<void>(resolve => {
      // One thread for pack-objects: the coordinator's event loop keeps the other core. No delta
      // search (`pack.window=0`): with it, the repacks of bench/coordinator/ops.ts cost git ~0.3 ms
      // more a report (it shrinks the objects ~40 times: a maintenance `git gc` can do that later;
      // loose objects had no deltas either). `-n`: no
      // update-server-info, which rewrote info/refs from every ref (thousands of experiment refs) at
      // each repack; nothing reads it (http/git.ts lists the packs and the campaign's ref itself).
      const child = spawn('git', ['-c', 'pack.threads=1', '-c', 'pack.window=0', 'repack', '-d', '-q', '-n', '--geometric=2'], { cwd: this.gitDir, env: this.opts.env, stdio: ['ignore', 'ignore', 'pipe'] })
      let stderr = ''
      let ended = false
      child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
      const end = (ok: boolean, why: string) => {
        if (ended) return
        ended = true
        // A failed repack leaves the packs as they were; the next is tried after as many packs again.
        if (!ok) console.error(`git store: repack failed (${why}); packs are left as they are`)
        this.repacks++
        this.repack = null
        this.opts.onRepack?.({ ok, ms: Date.now() - started, packsBefore })
        resolve()
        if (this.opts.repackAfter && this.packsSinceRepack >= this.opts.repackAfter) this.startRepack()
      }
      child.on('error', err => end(false, err.message))
      child.on('close', code => end(code === 0, `exit ${code}: ${stderr.trim()}`))
    })
  }
}

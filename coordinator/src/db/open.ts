import Database from 'better-sqlite3'
import { drizzle, type BetterSQLite3Database } from 'drizzle-orm/better-sqlite3'
import { migrate } from 'drizzle-orm/better-sqlite3/migrator'
import { open, type FileHandle } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { Worker } from 'node:worker_threads'
import { fileURLToPath } from 'node:url'
import { bundledFile, runtimeFile } from '@autoresearch-grid/shared'
import * as schema from './schema.ts'
import { step } from '../trace/steps.ts'

export type Db = BetterSQLite3Database<typeof schema> & {
  $client: Database.Database
  /** Resolves once every transaction committed so far is on disk: await it before acknowledging. */
  durable(): Promise<void>
}

/** A database handle or an open transaction: both can write. */
export type Writer = Pick<Db, 'insert' | 'update' | 'select' | 'delete'>

const MIGRATIONS = runtimeFile('migrations', () => fileURLToPath(new URL('../../drizzle', import.meta.url)))
/** In a release bundle there is no node_modules for better-sqlite3 to find its addon in. */
const NATIVE_BINDING = bundledFile('sqliteAddon')
const DRIVER = runtimeFile('sqliteDriver', () => createRequire(import.meta.url).resolve('better-sqlite3'))

/**
 * Opens (and migrates) the coordinator's SQLite file. WAL lets the dashboard read while a report
 * is written. "Durable before acknowledged" (a volunteer's 5 minutes of GPU time must survive a
 * power cut) is kept by group commit: transactions commit without waiting for the disk
 * (synchronous=NORMAL), and whoever acknowledges a write first awaits `durable()`, one fdatasync
 * of the WAL in the background shared by everything committed meanwhile. synchronous=FULL did that
 * fsync inside every commit, on the event loop: 2.4 ms each on the benchmark's disk, so at most
 * ~400 writes a second for the whole coordinator (docs/PERFORMANCE.md, "Coordinator under load").
 */
export function openDb(file: string, migrationsFolder = process.env.AUTORESEARCH_MIGRATIONS ?? MIGRATIONS): Db {
  const sqlite = new Database(file, NATIVE_BINDING ? { nativeBinding: NATIVE_BINDING } : {})
  sqlite.pragma('journal_mode = WAL')
  sqlite.pragma('synchronous = NORMAL')
  sqlite.pragma('foreign_keys = ON')
  sqlite.pragma('busy_timeout = 5000')
  const db = drizzle(sqlite, { schema })
  migrate(db, { migrationsFolder })
  // Checkpoints (copying the WAL into the database file, two fsyncs) run on another thread; left to
  // SQLite they ran inside whichever commit crossed 1000 pages, stalling the event loop for tens
  // of milliseconds a few times a second under load.
  sqlite.pragma('wal_autocheckpoint = 0')
  const checkpoints = startCheckpoints(file)
  const wal = groupCommit(walSync(`${file}-wal`))
  const close = sqlite.close.bind(sqlite)
  sqlite.close = () => {
    void checkpoints.terminate()
    wal.close()
    return close()
  }
  return Object.assign(db, { durable: wal.durable }) as Db
}

/**
 * A worker thread with its own connection that checkpoints the WAL every half second (PASSIVE:
 * it never waits for, nor blocks, the coordinator's reads and writes). It does not keep the
 * process alive. Plain JavaScript, since a worker thread does not get the coordinator's tsx loader.
 */
function startCheckpoints(file: string, everyMs = 500): Worker {
  const code = `
    const { workerData } = require('node:worker_threads')
    const Database = require(workerData.driver)
    const db = new Database(workerData.file, workerData.nativeBinding ? { nativeBinding: workerData.nativeBinding } : {})
    db.pragma('busy_timeout = 5000')
    db.pragma('synchronous = NORMAL')
    setInterval(() => { try { db.pragma('wal_checkpoint(PASSIVE)') } catch {} }, workerData.everyMs)`
  const worker = new Worker(code, { eval: true, workerData: { file, everyMs, driver: DRIVER, nativeBinding: NATIVE_BINDING } })
  worker.unref()
  return worker
}

/**
 * An fdatasync of the WAL, off the event loop. fdatasync works on the file, whichever descriptor
 * wrote it; the WAL stays the same file while this connection is open, so one descriptor is kept.
 * With no WAL file there is nothing unsynced: a checkpoint (which syncs the database file) has
 * taken it all.
 */
function walSync(wal: string): { sync: () => Promise<void>; close: () => void } {
  let handle: Promise<FileHandle | null> | null = null
  const sync = async () => {
    handle ??= open(wal, 'r').catch((err: NodeJS.ErrnoException) => { if (err.code === 'ENOENT') return null; throw err })
    const h = await handle.catch(err => { handle = null; throw err })
    if (!h) handle = null
    step('-', 'sync-start')
    if (h) await h.datasync()
    step('-', 'sync-end')
  }
  return { sync, close: () => { void handle?.then(h => h?.close(), () => {}); handle = null } }
}

/** Syncs of the WAL that may run at once (groupCommit). */
export const MAX_SYNCS = 2

/**
 * Group commit: `durable()` resolves once a sync that began after it was called has ended, so
 * everything committed before the call is on disk. A caller joins the sync waiting for a slot, if
 * there is one; otherwise it starts one at once while fewer than MAX_SYNCS run. One sync at a time
 * made a caller that came while one ran wait for that one to end first, then for its own: two
 * disk flushes in a row, and a flush on the benchmark's disk takes 70-140 ms at its p99
 * (docs/PERFORMANCE.md, "Ninth pass"). Two running together each still cover everything written
 * before they began (fdatasync's promise), so nothing is acknowledged earlier than it is on disk.
 */
export function groupCommit(wal: { sync: () => Promise<void>; close: () => void }): { durable: () => Promise<void>; close: () => void } {
  let running = 0
  let next: { promise: Promise<void>; begin: () => void } | null = null
  const run = (): Promise<void> => {
    running++
    return wal.sync().finally(() => {
      running--
      const n = next
      next = null
      n?.begin()
    })
  }
  const durable = (): Promise<void> => {
    if (next) return next.promise
    if (running < MAX_SYNCS) return run()
    let begin!: () => void
    const promise = new Promise<void>((resolve, reject) => { begin = () => void run().then(resolve, reject) })
    next = { promise, begin }
    return promise
  }
  return { durable, close: wal.close }
}

import Database from 'better-sqlite3'
import { drizzle, type BetterSQLite3Database } from 'drizzle-orm/better-sqlite3'
import { migrate } from 'drizzle-orm/better-sqlite3/migrator'
import { fileURLToPath } from 'node:url'
import * as schema from './schema.ts'

export type Db = BetterSQLite3Database<typeof schema> & { $client: Database.Database }

const MIGRATIONS = fileURLToPath(new URL('../../drizzle', import.meta.url))

/**
 * Opens (and migrates) the coordinator's SQLite file. WAL lets the dashboard read while a report
 * is written; synchronous=FULL makes a committed report survive a power cut, which is what
 * "durable before acknowledged" means for a volunteer's 5 minutes of GPU time.
 */
export function openDb(file: string, migrationsFolder = process.env.AUTORESEARCH_MIGRATIONS ?? MIGRATIONS): Db {
  const sqlite = new Database(file)
  sqlite.pragma('journal_mode = WAL')
  sqlite.pragma('synchronous = FULL')
  sqlite.pragma('foreign_keys = ON')
  sqlite.pragma('busy_timeout = 5000')
  const db = drizzle(sqlite, { schema })
  migrate(db, { migrationsFolder })
  return db as Db
}

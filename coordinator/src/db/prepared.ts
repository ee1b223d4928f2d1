import { sql } from 'drizzle-orm'
import type { Writer } from './open.ts'

/**
 * Queries compiled once per database and run with `sql.placeholder(...)` values. drizzle builds
 * the SQL text of a query every time it runs one: 0.1–0.3 ms on the load benchmark's VM, fifty
 * times what SQLite then takes to answer. On the paths that every lease, report and heartbeat
 * take, building SQL was most of the coordinator's work (docs/PERFORMANCE.md, "Coordinator under
 * load"); those paths use prepared queries instead.
 *
 * `queries(handle)` accepts the database or a transaction on it: a transaction shares its
 * database's session (drizzle's better-sqlite3 driver), so that is the key, and a query prepared
 * once runs inside any later transaction of that database.
 */
export function prepared<Q>(build: (db: Writer) => Q): (handle: Writer) => Q {
  const bySession = new WeakMap<object, Q>()
  return handle => {
    const session = (handle as unknown as { session: object }).session
    let q = bySession.get(session)
    if (!q) bySession.set(session, (q = build(handle)))
    return q
  }
}

/**
 * A prepared query's LIMIT, written into its SQL text instead of bound (`.limit(limitInText(60))`).
 * drizzle binds `.limit(n)` as a parameter, SQLite plans a LIMIT with the value bound at the time,
 * and binding that parameter again expires the statement (sqlite3_expired): better-sqlite3 binds
 * every parameter on every run, so each run parsed and planned the query afresh. The scheduler's
 * queue read took 44 µs a run that way, 8.6 µs with the limit in the text (docs/PERFORMANCE.md,
 * "Third pass"). drizzle writes an SQL chunk given as the limit as it is (`buildLimit`).
 */
export function limitInText(n: number): number {
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`not a row limit: ${n}`)
  return sql.raw(String(n)) as unknown as number
}

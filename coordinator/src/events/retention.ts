import { and, gt, inArray, lte, sql } from 'drizzle-orm'
import type { Db } from '../db/open.ts'
import { events } from '../db/schema.ts'
import { prepared } from '../db/prepared.ts'

/**
 * The grid's traffic in the audit log: a row for every lease, hello and lease that lapsed or was
 * taken back. At 10,000 workers with a 5-minute budget that is ~3 million rows a day, and one token
 * saying hello once a second (the most workers/hello-pace.ts lets through) adds ~86,000; nothing read
 * them after the moment. They are deleted once older than `eventRetentionMs` (default 7 days).
 * Everything else stays for good: decisions, merges and reverts (campaigns/revert.ts reads these),
 * reviews, tokens, hypotheses, the maintainer's acts.
 */
export const TRAFFIC_EVENTS = ['unit-leased', 'worker-hello', 'lease-expired', 'lease-reclaimed', 'lease-held-too-long', 'units-requeued', 'leases-resumed'] as const

export const DEFAULT_EVENT_RETENTION_MS = 7 * 24 * 60 * 60 * 1000

/** Rows looked at per transaction: a pass never holds the writer for long. */
export const PRUNE_BATCH = 2000

/** How far the log has been pruned, by id: a pass starts there, not at the first row kept for good. The caller keeps it between passes. */
export interface Pruned { id: number }

const p = sql.placeholder
const q = prepared(db => ({
  last: db.select({ id: sql<number | null>`max(${events.id})` }).from(events).prepare(),
  firstYoung: db.select({ id: sql<number | null>`min(${events.id})` }).from(events)
    .where(and(gt(events.id, p('from')), lte(events.id, p('to')), sql`${events.createdAt} >= ${p('cutoff')}`)).prepare(),
  drop: db.delete(events).where(and(gt(events.id, p('from')), lte(events.id, p('to')), inArray(events.type, [...TRAFFIC_EVENTS]))).prepare(),
}))

/**
 * Deletes traffic events older than the retention, at most `batches` × PRUNE_BATCH ids, one
 * transaction each, walking ids upwards from where the last pass stopped and stopping at the first
 * event young enough to keep (ids grow with time). Returns the rows deleted.
 */
export function pruneEvents(db: Db, o: { now: number; retentionMs?: number; pruned: Pruned }, batches = 10): number {
  const cutoff = o.now - (o.retentionMs ?? DEFAULT_EVENT_RETENTION_MS)
  const pruned = o.pruned
  let deleted = 0
  for (let i = 0; i < batches; i++) {
    const done = db.transaction(tx => {
      const last = q(tx).last.get()?.id ?? 0
      if (last <= pruned.id) return true
      const upTo = Math.min(last, pruned.id + PRUNE_BATCH)
      const young = q(tx).firstYoung.get({ from: pruned.id, to: upTo, cutoff })?.id ?? null
      const to = young === null ? upTo : young - 1
      if (to > pruned.id) deleted += q(tx).drop.run({ from: pruned.id, to }).changes
      pruned.id = Math.max(pruned.id, to)
      return young !== null
    })
    if (done) break
  }
  return deleted
}

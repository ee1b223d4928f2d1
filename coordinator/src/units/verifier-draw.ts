import { randomInt } from 'node:crypto'
import { and, eq, gte, sql } from 'drizzle-orm'
import { workers, workUnits } from '../db/schema.ts'
import type { Writer } from '../events/log.ts'
import { prepared } from '../db/prepared.ts'
import { ACTIVE_WORKER_MS } from '../classes/approval.ts'

type Unit = typeof workUnits.$inferSelect

/**
 * Who runs a verification (issue 15): a worker drawn at random among those eligible, not the next
 * one to ask. Handing a queued verification to whoever asks first lets an author predict its
 * verifier — a friend kept idle and polling gets it. The draw is among the class's workers seen
 * lately (ACTIVE_WORKER_MS), not banned, of no excluded contributor (the author's; those that
 * verified already while more distinct contributors are needed), with a cryptographic random
 * index. Only the drawn worker may take the unit until `reserved_until`; then another is drawn
 * (a drawn worker that went away holds nobody up for longer than one window). With nobody
 * eligible the unit stays open to any eligible worker that asks.
 */
const q = prepared(db => ({
  pool: db.select({ id: workers.id, contributorId: workers.contributorId }).from(workers)
    .where(and(eq(workers.hardwareClass, sql.placeholder('cls')), eq(workers.banned, false), gte(workers.lastSeen, sql.placeholder('since')))).prepare(),
  reserve: db.update(workUnits).set({ reservedFor: sql`${sql.placeholder('worker')}`, reservedUntil: sql`${sql.placeholder('until')}` })
    .where(and(eq(workUnits.id, sql.placeholder('id')), eq(workUnits.state, 'queued'))).prepare(),
}))

export function excludedOf(u: Pick<Unit, 'excludedContributors'>): string[] {
  return Array.isArray(u.excludedContributors) ? u.excludedContributors : []
}

/**
 * Draws a verifier for each queued verification among `units` without a live reservation;
 * returns the units as they are now (reservations filled in) and whether any draw happened.
 */
export function drawVerifiers(tx: Writer, units: Unit[], now: number, windowMs: number): { units: Unit[]; drawn: boolean } {
  let drawn = false
  const pools = new Map<string, { id: string; contributorId: string }[]>()
  const out = units.map(u => {
    if (u.kind !== 'verify' || u.state !== 'queued' || (u.reservedFor && (u.reservedUntil ?? 0) > now)) return u
    const cls = u.hardwareClass ?? ''
    let pool = pools.get(cls)
    if (!pool) pools.set(cls, (pool = q(tx).pool.all({ cls, since: now - ACTIVE_WORKER_MS })))
    const excluded = excludedOf(u)
    const eligible = pool.filter(w => !excluded.includes(w.contributorId) && w.id !== u.excludedWorker)
    if (!eligible.length) return { ...u, reservedFor: null, reservedUntil: null }
    const pick = eligible[randomInt(eligible.length)]
    q(tx).reserve.run({ worker: pick.id, until: now + windowMs, id: u.id })
    drawn = true
    return { ...u, reservedFor: pick.id, reservedUntil: now + windowMs }
  })
  return { units: out, drawn }
}

import { and, eq, lt } from 'drizzle-orm'
import { LIMITS } from '@autoresearch-grid/shared'
import type { Ctx, Settings } from '../context.ts'
import { workUnits } from '../db/schema.ts'
import { logEvent } from '../events/log.ts'
import type { Campaign } from '../campaigns/campaigns.ts'
import { expireLease, extendLeases } from './lifecycle.ts'

/** A lease covers the budget plus start-up, compile and agent time; heartbeats keep renewing it. */
export function leaseSeconds(c: Pick<Campaign, 'spec'>, s: Settings): number {
  return c.spec.budgetSeconds + s.leaseMarginSeconds
}

/**
 * How long heartbeats may keep one lease alive, from when it began (or from the restart that
 * extended it). A worker holds at most LIMITS.capacity units, trained one after the other, so an
 * honest one reports each within that many lease lengths; one more is slack. Unbounded, a
 * contributor drawn to verify a rival's candidate could beat for its unit and never report, and
 * the candidate waited for good (test/hostile/lease-hold.test.ts); the same held for a
 * hypothesis's exploration and the best's baselines. Past it, the unit goes back to the queue
 * under a new token (units/presence.ts).
 */
export function maxHoldSeconds(c: Pick<Campaign, 'spec'>, s: Settings): number {
  return s.maxLeaseHoldSeconds ?? (LIMITS.capacity + 1) * leaseSeconds(c, s)
}

/**
 * Gives every live lease at least one lease margin from now; run when a coordinator starts serving.
 * Leases run on while the coordinator is down, and nobody can renew them then: after a restart
 * longer than the margin every unit would be re-queued at the first expiry sweep, before its
 * worker, training all along, had a chance to reconnect and beat. A worker that is really gone
 * keeps its units for at most one margin longer. Returns how many leases were extended.
 */
export function resumeLeases(ctx: Ctx): number {
  const until = ctx.now() + ctx.settings.leaseMarginSeconds * 1000
  return ctx.db.transaction(tx => {
    const extended = extendLeases(tx, until, ctx.now())
    if (extended) logEvent(tx, null, 'leases-resumed', { units: extended, until })
    return extended
  })
}

/**
 * Returns expired leases to the queue. The lease token is kept: a late report that still carries it
 * counts as long as nobody else has taken the unit since (then the unit has a new token).
 */
export function expireLeases(ctx: Ctx): number {
  const now = ctx.now()
  const expired = ctx.db.select().from(workUnits).where(and(eq(workUnits.state, 'leased'), lt(workUnits.leaseExpiresAt, now))).all()
  if (!expired.length) return 0
  // The read and the transaction run in one synchronous stretch: no unit changes in between.
  ctx.db.transaction(tx => {
    for (const u of expired) {
      expireLease(tx, u.id, now)
      logEvent(tx, u.campaign, 'lease-expired', { unit: u.id, worker: u.workerId, kind: u.kind })
    }
  })
  // The workers that held them are not woken: a live one takes its unit back with its next
  // heartbeat (units/presence.ts), and its feed handing the unit out again first would refuse the
  // run it still trains (faults/reports.test.ts). Its full feed looks again at its slow timer.
  for (const c of new Set(expired.map(u => u.campaign))) ctx.bus.emit({ type: 'work-available', campaign: c })
  return expired.length
}

import { and, eq, isNotNull, ne, notInArray, or, sql } from 'drizzle-orm'
import type { HelloReply, Heartbeat, WorkerHello } from '@autoresearch-grid/shared'
import type { Ctx } from '../context.ts'
import { workUnits, workers } from '../db/schema.ts'
import { prepared } from '../db/prepared.ts'
import { logEvent } from '../events/log.ts'
import { getCampaign } from '../campaigns/campaigns.ts'
import { heartbeatSeconds } from '../workers/heartbeat-interval.ts'
import { campaignsFor, registerWorker, touchWorker, type Worker } from '../workers/registry.ts'
import { takeHello } from '../workers/hello-pace.ts'
import { leaseSeconds, maxHoldSeconds } from './leases.ts'
import { getUnit, reclaimLease, renewLease, requeueUnit } from './lifecycle.ts'

/**
 * A worker's presence as the work units see it: its hello re-queues what it no longer holds, its
 * heartbeats renew the leases it does. The worker's own row is workers/registry.ts's.
 */

const q = prepared(db => ({
  classOf: db.select({ cls: workers.hardwareClass }).from(workers).where(eq(workers.id, sql.placeholder('id'))).prepare(),
}))

/** Registers (or re-registers) one GPU loop of a contributor; re-queues units it no longer holds. */
export function hello(ctx: Ctx, contributorId: string, hi: WorkerHello): HelloReply {
  const now = ctx.now()
  takeHello(ctx, contributorId)
  const workerId = ctx.db.transaction(tx => {
    const workerId = registerWorker(tx, contributorId, hi, now, ctx.settings.maxActiveWorkersPerContributor)
    // A restarted worker lost whatever it was not holding: hand those units to someone else now,
    // rather than after their leases run out. So is a unit handed out for a class the worker no
    // longer says it has: its report would be refused (units/report.ts).
    const cls = q(tx).classOf.get({ id: workerId })!.cls
    const lost = tx.select({ id: workUnits.id }).from(workUnits)
      .where(and(eq(workUnits.workerId, workerId), eq(workUnits.state, 'leased'),
        hi.holding.length ? or(notInArray(workUnits.id, hi.holding), and(isNotNull(workUnits.hardwareClass), ne(workUnits.hardwareClass, cls))) : undefined)).all()
    if (lost.length) {
      // A fresh lease token each: the worker said it no longer holds them, so nothing may be
      // reported or reclaimed with the old token (a report for the lost run is not coming, and one
      // forged from the old lease must not count).
      for (const u of lost) requeueUnit(tx, u.id, workerId, now)
      logEvent(tx, null, 'units-requeued', { worker: workerId, units: lost.map(u => u.id), reason: 'worker restarted' })
    }
    return workerId
  })
  // A feed of this worker still open has room again (it is not hungry while full).
  ctx.bus.wakeWorker(workerId)
  ctx.bus.emit({ type: 'work-available', campaign: '*' })
  return { workerId, campaigns: campaignsFor(ctx, hi.fingerprints), heartbeatSeconds: heartbeatSeconds(ctx.bus.workersWithFeeds + 1) }
}

/**
 * Renews the leases the worker still holds and records progress. Returns units it should stop,
 * and when to beat next (workers/heartbeat-interval.ts).
 */
export function heartbeat(ctx: Ctx, worker: Worker, hb: Heartbeat): { cancelled: string[]; heartbeatSeconds: number } {
  const now = ctx.now()
  const cancelled: string[] = []
  const requeued = new Set<string>()
  // Every worker beats every few seconds: prepared queries only (db/prepared.ts).
  ctx.db.transaction(tx => {
    touchWorker(tx, worker.id, now)
    for (const u of hb.units) {
      const unit = getUnit(tx, u.unitId)
      // A lease that ran out while nobody took the unit since (expiry keeps the token; a new lease
      // gets a new one) is taken back: the worker is still on it, and its late report would count
      // anyway (DESIGN §8). Cancelling it here would throw that run away.
      const reclaim = unit?.state === 'queued' && unit.leaseToken === u.leaseToken
      if (!unit || unit.leaseToken !== u.leaseToken || (!reclaim && (unit.workerId !== worker.id || unit.state !== 'leased'))) {
        cancelled.push(u.unitId)
        continue
      }
      const campaign = getCampaign({ db: tx as never }, unit.campaign)!
      // Held past its bound (units/leases.ts, maxHoldSeconds): back to the queue under a new token,
      // and the worker is told to drop it. Its report would be refused from now on.
      const hold = maxHoldSeconds(campaign, ctx.settings)
      if (unit.leasedAt !== null && now - unit.leasedAt > hold * 1000) {
        if (!reclaim) requeueUnit(tx, unit.id, worker.id, now)
        logEvent(tx, unit.campaign, 'lease-held-too-long', { unit: unit.id, worker: worker.id, heldSeconds: Math.round((now - unit.leasedAt) / 1000), maxSeconds: hold })
        requeued.add(unit.campaign)
        cancelled.push(u.unitId)
        continue
      }
      if (reclaim) {
        reclaimLease(tx, unit.id, worker.id, u.leaseToken)
        logEvent(tx, unit.campaign, 'lease-reclaimed', { unit: unit.id, worker: worker.id })
      }
      renewLease(tx, unit.id, { workerId: worker.id, token: u.leaseToken, expiresAt: now + leaseSeconds(campaign, ctx.settings) * 1000 }, u.progress, now)
      ctx.bus.emit({ type: 'progress', campaign: unit.campaign, workerId: worker.id, unitId: unit.id })
    }
  })
  for (const campaign of requeued) ctx.bus.emit({ type: 'work-available', campaign })
  if (hb.capacity !== undefined) ctx.bus.declareCapacity(worker.id, hb.capacity)
  return { cancelled, heartbeatSeconds: heartbeatSeconds(ctx.bus.workersWithFeeds) }
}

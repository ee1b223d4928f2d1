import { and, eq, notInArray, sql } from 'drizzle-orm'
import { describeSource, hardwareClass, type HelloReply, type Heartbeat, type WorkerHello } from '@autoresearch-grid/shared'
import type { Ctx } from '../context.ts'
import { newId } from '../context.ts'
import { workUnits, workers } from '../db/schema.ts'
import { logEvent } from '../events/log.ts'
import { prepared } from '../db/prepared.ts'
import { getCampaign, listCampaigns, type Campaign } from '../campaigns/campaigns.ts'
import { UserError } from '../errors.ts'
import { leaseSeconds } from '../units/leases.ts'
import { reclaimLease, renewLease, requeueUnit } from '../units/lifecycle.ts'
import { heartbeatSeconds } from './heartbeat-interval.ts'
import { dataPathOf } from '../dataset/manifest.ts'

export type Worker = typeof workers.$inferSelect

/** Why a worker's numbers would not be comparable on a campaign, with what to do; null if fine. */
export function fingerprintProblem(c: Campaign, fingerprint: string | undefined): string | null {
  // Without a pinned fingerprint any prepared data will do; but data a worker must download or be
  // served (climbmix, a served data set) it must have, or its units could only fail.
  if (!c.spec.fingerprint && (fingerprint || c.spec.data.kind === 'embedded')) return null
  if (!fingerprint) return `not prepared for campaign "${c.name}" (data: ${describeSource(c.spec.data)}): worker join prepares it with the campaign's tokenizer; its log says why it could not`
  if (c.spec.fingerprint && fingerprint !== c.spec.fingerprint)
    return `data fingerprint ${fingerprint.slice(0, 12)}… differs from campaign "${c.name}"'s ${c.spec.fingerprint.slice(0, 12)}…: ` +
      (c.spec.data.kind === 'served'
        ? `download the campaign's data set again (GET /data/${c.name}; worker join does this, delete its copy under <state>/data/_served to force it), then join again`
        : `prepare with the campaign's tokenizer (GET /tokenizer/${c.name}), the campaign's data source (${describeSource(c.spec.data)}) and profile "${c.spec.profile}", then join again`)
  return null
}

/** Registers (or re-registers) one GPU loop of a contributor; re-queues units it no longer holds. */
export function hello(ctx: Ctx, contributorId: string, hi: WorkerHello): HelloReply {
  const now = ctx.now()
  // Results are compared within a class, so the class is derived here, not taken on the worker's word.
  const cls = hardwareClass({ gpus: hi.hardware.gpus, arch: hi.hardware.cpu.arch, mps: hi.hardware.hardwareClass.startsWith('mps') })
  const input = { ...hi, hardware: { ...hi.hardware, hardwareClass: cls } }
  const existing = q(ctx.db).byName.get({ contributor: contributorId, name: input.name })
  if (existing?.banned) throw new UserError(`worker "${input.name}" is banned on this coordinator; ask its maintainer`)
  const workerId = existing?.id ?? newId('w')
  ctx.db.transaction(tx => {
    if (existing) {
      tx.update(workers).set({ hardware: input.hardware, hardwareClass: input.hardware.hardwareClass, lastSeen: now }).where(eq(workers.id, workerId)).run()
    } else {
      tx.insert(workers).values({ id: workerId, name: input.name, contributorId, hardware: input.hardware, hardwareClass: input.hardware.hardwareClass, lastSeen: now }).run()
    }
    // A restarted worker lost whatever it was not holding: hand those units to someone else now,
    // rather than after their leases run out.
    const lost = tx.select({ id: workUnits.id }).from(workUnits)
      .where(and(eq(workUnits.workerId, workerId), eq(workUnits.state, 'leased'), input.holding.length ? notInArray(workUnits.id, input.holding) : undefined)).all()
    if (lost.length) {
      // A fresh lease token each: the worker said it no longer holds them, so nothing may be
      // reported or reclaimed with the old token (a report for the lost run is not coming, and one
      // forged from the old lease must not count).
      for (const u of lost) requeueUnit(tx, u.id, workerId, now)
      logEvent(tx, null, 'units-requeued', { worker: workerId, units: lost.map(u => u.id), reason: 'worker restarted' })
    }
    logEvent(tx, null, 'worker-hello', { worker: workerId, name: input.name, hardwareClass: input.hardware.hardwareClass })
  })
  const campaigns = listCampaigns(ctx).map(c => ({
    name: c.name,
    spec: c.spec,
    tokenizerPath: c.tokenizerFile ? `/tokenizer/${c.name}` : null,
    refused: fingerprintProblem(c, input.fingerprints[c.name]),
    dataPath: c.spec.data.kind === 'served' ? dataPathOf(c.name) : null,
  }))
  ctx.bus.emit({ type: 'work-available', campaign: '*' })
  return { workerId, campaigns, heartbeatSeconds: heartbeatSeconds(ctx.bus.workersWithFeeds + 1) }
}

const q = prepared(db => ({
  worker: db.select().from(workers).where(eq(workers.id, sql.placeholder('id'))).prepare(),
  // A crowd of workers joining at once: the hello path is prepared too.
  byName: db.select().from(workers).where(and(eq(workers.contributorId, sql.placeholder('contributor')), eq(workers.name, sql.placeholder('name')))).prepare(),
  seen: db.update(workers).set({ lastSeen: sql`${sql.placeholder('now')}` }).where(eq(workers.id, sql.placeholder('id'))).prepare(),
  unit: db.select().from(workUnits).where(eq(workUnits.id, sql.placeholder('id'))).prepare(),
}))

export function getWorker(ctx: Pick<Ctx, 'db'>, id: string): Worker | undefined {
  return q(ctx.db).worker.get({ id })
}

/** The worker, if it belongs to this contributor; anything else is refused the same way. */
export function ownWorker(ctx: Pick<Ctx, 'db'>, contributorId: string, workerId: string): Worker {
  const w = getWorker(ctx, workerId)
  if (!w || w.contributorId !== contributorId) throw new UserError(`unknown worker "${workerId}": call worker.hello first`)
  if (w.banned) throw new UserError('this worker is banned on this coordinator')
  return w
}

/**
 * Renews the leases the worker still holds and records progress. Returns units it should stop,
 * and when to beat next (heartbeat-interval.ts).
 */
export function heartbeat(ctx: Ctx, worker: Worker, hb: Heartbeat): { cancelled: string[]; heartbeatSeconds: number } {
  const now = ctx.now()
  const cancelled: string[] = []
  // Every worker beats every few seconds: prepared queries only (db/prepared.ts).
  ctx.db.transaction(tx => {
    q(tx).seen.run({ now, id: worker.id })
    for (const u of hb.units) {
      const unit = q(tx).unit.get({ id: u.unitId })
      // A lease that ran out while nobody took the unit since (expiry keeps the token; a new lease
      // gets a new one) is taken back: the worker is still on it, and its late report would count
      // anyway (DESIGN §8). Cancelling it here would throw that run away.
      const reclaim = unit?.state === 'queued' && unit.leaseToken === u.leaseToken
      if (!unit || unit.leaseToken !== u.leaseToken || (!reclaim && (unit.workerId !== worker.id || unit.state !== 'leased'))) {
        cancelled.push(u.unitId)
        continue
      }
      if (reclaim) {
        reclaimLease(tx, unit.id, worker.id, u.leaseToken)
        logEvent(tx, unit.campaign, 'lease-reclaimed', { unit: unit.id, worker: worker.id })
      }
      const campaign = getCampaign({ db: tx as never }, unit.campaign)!
      renewLease(tx, unit.id, { workerId: worker.id, token: u.leaseToken, expiresAt: now + leaseSeconds(campaign, ctx.settings) * 1000 }, u.progress, now)
      ctx.bus.emit({ type: 'progress', campaign: unit.campaign, workerId: worker.id, unitId: unit.id })
    }
  })
  if (hb.capacity !== undefined) ctx.bus.declareCapacity(worker.id, hb.capacity)
  return { cancelled, heartbeatSeconds: heartbeatSeconds(ctx.bus.workersWithFeeds) }
}

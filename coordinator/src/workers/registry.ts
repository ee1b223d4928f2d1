import { and, eq, gte, sql } from 'drizzle-orm'
import { describeSource, hardwareClass, type HelloReply, type WorkerHello } from '@autoresearch-grid/shared'
import type { Ctx } from '../context.ts'
import { newId } from '../context.ts'
import { workers } from '../db/schema.ts'
import type { Writer } from '../db/open.ts'
import { logEvent } from '../events/log.ts'
import { prepared } from '../db/prepared.ts'
import { listCampaigns, type Campaign } from '../campaigns/campaigns.ts'
import { UserError } from '../errors.ts'
import { dataPathOf } from '../dataset/manifest.ts'
import { ACTIVE_WORKER_MS } from '../classes/approval.ts'

/**
 * Workers of one contributor seen within the hour (ACTIVE_WORKER_MS) beyond which a hello with a
 * new name is refused: eight times the units a contributor may hold at once (units/assign.ts), far
 * above what one person runs, and a bound on the rows a token can add in an hour.
 */
export const DEFAULT_MAX_ACTIVE_WORKERS = 256

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

/**
 * Registers (or re-registers) one GPU loop of a contributor, in the caller's transaction; its
 * hardware class is derived here, not taken on the worker's word (results are compared within a
 * class). Returns its id. The units it held are the work-unit loop's (units/presence.ts).
 */
export function registerWorker(tx: Writer, contributorId: string, hi: WorkerHello, now: number, maxActiveWorkers?: number): string {
  const cls = hardwareClass({ gpus: hi.hardware.gpus, arch: hi.hardware.cpu.arch, mps: hi.hardware.hardwareClass.startsWith('mps') })
  const hardware = { ...hi.hardware, hardwareClass: cls }
  const existing = q(tx).byName.get({ contributor: contributorId, name: hi.name })
  if (existing?.banned) throw new UserError(`worker "${hi.name}" is banned on this coordinator; ask its maintainer`)
  if (!existing) {
    // A name costs one hello, and each is a row for good: one token registered ~1,000 a second
    // (test/hostile/worker-names.test.ts). New names stop at the bound of workers seen lately.
    const max = maxActiveWorkers ?? DEFAULT_MAX_ACTIVE_WORKERS
    if (q(tx).activeOf.get({ contributor: contributorId, since: now - ACTIVE_WORKER_MS })!.n >= max)
      throw new UserError(`your token already has ${max} workers seen within the hour, the most one contributor may have: ` +
        `start workers under names they had before (worker join --name), or wait for unused names to go quiet`, 'quota')
  }
  const workerId = existing?.id ?? newId('w')
  if (existing) {
    tx.update(workers).set({ hardware, hardwareClass: cls, lastSeen: now }).where(eq(workers.id, workerId)).run()
  } else {
    tx.insert(workers).values({ id: workerId, name: hi.name, contributorId, hardware, hardwareClass: cls, lastSeen: now }).run()
  }
  logEvent(tx, null, 'worker-hello', { worker: workerId, name: hi.name, hardwareClass: cls })
  return workerId
}

/** What a worker is told about the campaigns on hello: their specs, and why it may not take part. */
export function campaignsFor(ctx: Ctx, fingerprints: WorkerHello['fingerprints']): HelloReply['campaigns'] {
  return listCampaigns(ctx).map(c => ({
    name: c.name,
    spec: c.spec,
    tokenizerPath: c.tokenizerFile ? `/tokenizer/${c.name}` : null,
    refused: fingerprintProblem(c, fingerprints[c.name]),
    dataPath: c.spec.data.kind === 'served' ? dataPathOf(c.name) : null,
  }))
}

/** The worker was heard from (every heartbeat: a prepared query). */
export function touchWorker(tx: Writer, workerId: string, now: number): void {
  q(tx).seen.run({ now, id: workerId })
}

const q = prepared(db => ({
  worker: db.select().from(workers).where(eq(workers.id, sql.placeholder('id'))).prepare(),
  // A crowd of workers joining at once: the hello path is prepared too.
  byName: db.select().from(workers).where(and(eq(workers.contributorId, sql.placeholder('contributor')), eq(workers.name, sql.placeholder('name')))).prepare(),
  activeOf: db.select({ n: sql<number>`count(*)` }).from(workers)
    .where(and(eq(workers.contributorId, sql.placeholder('contributor')), gte(workers.lastSeen, sql.placeholder('since')))).prepare(),
  seen: db.update(workers).set({ lastSeen: sql`${sql.placeholder('now')}` }).where(eq(workers.id, sql.placeholder('id'))).prepare(),
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

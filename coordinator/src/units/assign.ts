import { and, desc, eq, inArray, isNull, ne, or, sql } from 'drizzle-orm'
import { randomBytes } from 'node:crypto'
import type { UnitKind, WorkUnit } from '@autoresearch-grid/shared'
import type { Ctx } from '../context.ts'
import { newId } from '../context.ts'
import { experiments, hypotheses, measurements, workUnits } from '../db/schema.ts'
import { logEvent, type Writer } from '../events/log.ts'
import { getCampaign, listCampaigns, type Campaign } from '../campaigns/campaigns.ts'
import type { Worker } from '../workers/registry.ts'
import { leaseSeconds } from './leases.ts'

type Unit = typeof workUnits.$inferSelect

const KIND_ORDER: Record<UnitKind, number> = { baseline: 0, verify: 1, rebase: 2, explore: 3 }

/** Units a worker may take from the queue: its class (or any), never its own candidate's verification. */
function queuedFor(tx: Writer, c: Campaign, w: Worker): Unit[] {
  return tx.select().from(workUnits).where(and(
    eq(workUnits.campaign, c.name),
    eq(workUnits.state, 'queued'),
    or(isNull(workUnits.hardwareClass), eq(workUnits.hardwareClass, w.hardwareClass)),
    or(isNull(workUnits.excludedWorker), ne(workUnits.excludedWorker, w.id)),
  )).all().sort((a, b) => KIND_ORDER[a.kind] - KIND_ORDER[b.kind] || a.createdAt - b.createdAt)
}

function hasBaseline(tx: Writer, c: Campaign, cls: string): boolean {
  const measured = tx.select({ n: sql<number>`count(*)` }).from(measurements)
    .where(and(eq(measurements.campaign, c.name), eq(measurements.commit, c.bestCommit), eq(measurements.hardwareClass, cls))).get()!.n > 0
  if (measured) return true
  const inFlight = tx.select({ n: sql<number>`count(*)` }).from(workUnits).where(and(
    eq(workUnits.campaign, c.name), eq(workUnits.kind, 'baseline'), eq(workUnits.parentCommit, c.bestCommit),
    eq(workUnits.hardwareClass, cls), inArray(workUnits.state, ['queued', 'leased']))).get()!.n
  return inFlight > 0
}

/** The open hypothesis of highest priority that nobody has taken on this parent yet. */
function nextHypothesis(tx: Writer, c: Campaign) {
  const taken = tx.select({ id: workUnits.hypothesisId }).from(workUnits)
    .where(and(eq(workUnits.campaign, c.name), eq(workUnits.parentCommit, c.bestCommit))).all().map(r => r.id).filter(Boolean) as string[]
  return tx.select().from(hypotheses).where(and(eq(hypotheses.campaign, c.name), inArray(hypotheses.status, ['open', 'in-progress'])))
    .orderBy(desc(hypotheses.priority), hypotheses.createdAt).all().find(h => !taken.includes(h.id))
}

/**
 * Picks and leases the most valuable unit for an idle worker (DESIGN §8): a queued unit it may
 * take (baselines, verifications, rebases, re-queued explores first), else a baseline of the best
 * for its class if none exists, else an exploration of the best hypothesis or a free one.
 * Synchronous, inside one transaction: two workers asking at once cannot get the same unit.
 */
export function leaseNextUnit(ctx: Ctx, worker: Worker, eligible: (c: Campaign) => boolean): Unit | null {
  const now = ctx.now()
  return ctx.db.transaction(tx => {
    for (const c of listCampaigns({ db: tx as never }).filter(c => c.status === 'active' && eligible(c))) {
      let unit: Unit | undefined = queuedFor(tx, c, worker)[0]
      if (!unit) {
        let kind: UnitKind = 'explore'
        let hypothesisId: string | null = null
        let hardwareClass: string | null = null
        if (!hasBaseline(tx, c, worker.hardwareClass)) {
          kind = 'baseline'
          hardwareClass = worker.hardwareClass
        } else {
          const h = nextHypothesis(tx, c)
          if (h) {
            hypothesisId = h.id
            tx.update(hypotheses).set({ status: 'in-progress' }).where(eq(hypotheses.id, h.id)).run()
          }
        }
        unit = { id: newId('u'), kind, campaign: c.name, hypothesisId, parentCommit: c.bestCommit, targetCommit: null, targetExperiment: null,
          hardwareClass, excludedWorker: null, workerId: null, leaseToken: null, leaseExpiresAt: null, attempts: 0, state: 'queued',
          progress: null, createdAt: now, updatedAt: now }
        tx.insert(workUnits).values(unit).run()
      }
      const lease = { workerId: worker.id, leaseToken: randomBytes(16).toString('hex'), leaseExpiresAt: now + leaseSeconds(c, ctx.settings) * 1000,
        state: 'leased' as const, attempts: unit.attempts + 1, updatedAt: now, progress: null }
      tx.update(workUnits).set(lease).where(eq(workUnits.id, unit.id)).run()
      logEvent(tx, c.name, 'unit-leased', { unit: unit.id, kind: unit.kind, worker: worker.id, hypothesis: unit.hypothesisId })
      return { ...unit, ...lease }
    }
    return null
  })
}

/** Turns a leased unit row into the message a worker receives (reads the source from git). */
export async function toWorkUnit(ctx: Ctx, unit: Unit): Promise<WorkUnit> {
  const c = getCampaign(ctx, unit.campaign)!
  const commit = unit.kind === 'verify' && unit.targetCommit ? unit.targetCommit : unit.parentCommit
  const h = unit.hypothesisId ? ctx.db.select().from(hypotheses).where(eq(hypotheses.id, unit.hypothesisId)).get() : undefined
  const tried = ctx.db.select({ d: experiments.description }).from(experiments)
    .where(and(eq(experiments.campaign, c.name), eq(experiments.parentCommit, unit.parentCommit), eq(experiments.kind, 'explore')))
    .orderBy(desc(experiments.createdAt)).limit(200).all().map(r => r.d)
  const reference = unit.targetExperiment
    ? ctx.db.select({ diff: experiments.diff }).from(experiments).where(eq(experiments.id, unit.targetExperiment)).get()?.diff ?? null
    : null
  return {
    id: unit.id,
    kind: unit.kind,
    campaign: c.name,
    profile: c.spec.profile,
    budgetSeconds: c.spec.budgetSeconds,
    leaseToken: unit.leaseToken!,
    leaseExpiresAt: unit.leaseExpiresAt!,
    parentCommit: unit.parentCommit,
    source: await sourceOf(ctx, commit, c.spec.editableFiles),
    editableFiles: c.spec.editableFiles,
    hypothesis: h ? { id: h.id, title: h.title, body: h.body } : null,
    referenceDiff: reference,
    triedOnParent: tried,
  }
}

const sources = new Map<string, Record<string, string>>()

/** Commits never change, so their files are cached after the first read. */
export async function sourceOf(ctx: Ctx, commit: string, files: string[]): Promise<Record<string, string>> {
  const key = `${commit}:${files.join(',')}`
  let s = sources.get(key)
  if (!s) {
    s = await ctx.git.readFiles(commit, files)
    if (sources.size > 500) sources.clear()
    sources.set(key, s)
  }
  return s
}

export function leasedCount(ctx: Pick<Ctx, 'db'>, workerId: string): number {
  return ctx.db.select({ n: sql<number>`count(*)` }).from(workUnits).where(and(eq(workUnits.workerId, workerId), eq(workUnits.state, 'leased'))).get()!.n
}

import { and, desc, eq, inArray, isNotNull, sql } from 'drizzle-orm'
import { randomBytes } from 'node:crypto'
import type { WorkUnit } from '@autoresearch-grid/shared'
import type { Ctx } from '../context.ts'
import { newId } from '../context.ts'
import { experiments, hypotheses, measurements, workUnits } from '../db/schema.ts'
import { logEvent, type Writer } from '../events/log.ts'
import { getCampaign, listCampaigns, type Campaign } from '../campaigns/campaigns.ts'
import type { Worker } from '../workers/registry.ts'
import { leaseSeconds } from './leases.ts'
import { nextUnit, type SchedulerInput } from '../scheduler/index.ts'

type Unit = typeof workUnits.$inferSelect

/** A snapshot of a campaign's queue, in the scheduler's terms (a pure choice is made over it). */
function snapshot(tx: Writer, c: Campaign, worker: Worker): SchedulerInput {
  const units = tx.select().from(workUnits).where(and(eq(workUnits.campaign, c.name), inArray(workUnits.state, ['queued', 'leased']))).all()
  const measured = tx.select({ commit: measurements.commit, cls: measurements.hardwareClass, worker: measurements.workerId }).from(measurements)
    .where(eq(measurements.campaign, c.name)).all()
  const baselines: Record<string, number> = {}
  for (const m of measured) if (m.commit === c.bestCommit) baselines[m.cls] = (baselines[m.cls] ?? 0) + 1
  const tried = tx.select({ h: workUnits.hypothesisId, parent: workUnits.parentCommit }).from(workUnits)
    .where(and(eq(workUnits.campaign, c.name), isNotNull(workUnits.hypothesisId))).all()
  const hs = tx.select().from(hypotheses).where(and(eq(hypotheses.campaign, c.name), inArray(hypotheses.status, ['open', 'in-progress']))).all()
  return {
    worker: { id: worker.id, hardwareClass: worker.hardwareClass },
    best: c.bestCommit,
    baselines,
    units: units.map(u => ({
      id: u.id, kind: u.kind, commit: u.kind === 'verify' ? u.targetCommit! : u.parentCommit, hardwareClass: u.hardwareClass,
      candidateWorkerId: u.excludedWorker, measuredBy: u.kind === 'verify' ? measured.filter(m => m.commit === u.targetCommit).map(m => m.worker) : [],
      hypothesisId: u.hypothesisId, leasedTo: u.state === 'leased' ? u.workerId : null, queuedAt: u.createdAt,
    })),
    hypotheses: hs.map(h => ({ id: h.id, priority: h.priority, status: h.status, createdAt: h.createdAt, triedOn: tried.filter(t => t.h === h.id).map(t => t.parent) })),
    settings: { baselineRuns: c.spec.noise.baselineRuns, allowSelfVerification: c.spec.noise.allowSelfVerification },
  }
}

/**
 * Leases the most valuable unit for an idle worker (DESIGN §8, chosen by scheduler/next-unit.ts):
 * baselines of the best for its class, verifications it may run, rebases, then exploration.
 * Synchronous, inside one transaction: two workers asking at once cannot get the same unit.
 */
export function leaseNextUnit(ctx: Ctx, worker: Worker, eligible: (c: Campaign) => boolean): Unit | null {
  const now = ctx.now()
  return ctx.db.transaction(tx => {
    for (const c of listCampaigns({ db: tx as never }).filter(c => c.status === 'active' && eligible(c))) {
      const choice = nextUnit(snapshot(tx, c, worker))
      let unit: Unit
      if (choice.action === 'lease') {
        unit = tx.select().from(workUnits).where(eq(workUnits.id, choice.unitId)).get()!
      } else {
        const base = { id: newId('u'), campaign: c.name, targetCommit: null, targetExperiment: null, excludedWorker: null, workerId: null, leaseToken: null,
          leaseExpiresAt: null, attempts: 0, state: 'queued' as const, progress: null, createdAt: now, updatedAt: now }
        unit = choice.kind === 'baseline'
          ? { ...base, kind: 'baseline', hypothesisId: null, parentCommit: choice.commit, hardwareClass: choice.hardwareClass }
          : { ...base, kind: 'explore', hypothesisId: choice.hypothesisId, parentCommit: choice.parentCommit, hardwareClass: null }
        tx.insert(workUnits).values(unit).run()
      }
      if (unit.hypothesisId) tx.update(hypotheses).set({ status: 'in-progress' }).where(and(eq(hypotheses.id, unit.hypothesisId), eq(hypotheses.status, 'open'))).run()
      const lease = { workerId: worker.id, leaseToken: randomBytes(16).toString('hex'), leaseExpiresAt: now + leaseSeconds(c, ctx.settings) * 1000,
        state: 'leased' as const, attempts: unit.attempts + 1, updatedAt: now, progress: null }
      tx.update(workUnits).set(lease).where(eq(workUnits.id, unit.id)).run()
      logEvent(tx, c.name, 'unit-leased', { unit: unit.id, kind: unit.kind, worker: worker.id, hypothesis: unit.hypothesisId, reason: choice.reason })
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
  const target = unit.targetExperiment ? ctx.db.select().from(experiments).where(eq(experiments.id, unit.targetExperiment)).get() : undefined
  const reference = unit.kind === 'rebase' ? target?.diff ?? null : null
  // A rebase re-applies someone's idea on the new best: the idea is the hypothesis.
  const hypothesis = unit.kind === 'rebase' && target
    ? { id: target.id, title: `re-apply: ${target.description}`, body: 'The best moved on since this change was tried and its diff no longer applies cleanly. Re-apply the same idea to the current train.py; the original diff is attached as reference.' }
    : h ? { id: h.id, title: h.title, body: h.body } : null
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
    hypothesis,
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

import { and, asc, eq, gte, inArray, sql } from 'drizzle-orm'
import type { Ctx } from '../context.ts'
import { experiments, hardwareClasses, measurements, workers } from '../db/schema.ts'
import { logEvent } from '../events/log.ts'
import type { Writer } from '../db/open.ts'
import { limitInText, prepared } from '../db/prepared.ts'
import type { Campaign } from '../campaigns/campaigns.ts'
import { mean, median } from '../ratchet/index.ts'
import { noiseFloorOf } from '../measurements/noise-floor.ts'

/**
 * Which hardware classes count toward merges (issue 15). Numbers are compared only within a
 * class, so whoever supplies every number of a class decides what it says: two colluding
 * contributors invented class `rtx9999-48g`, ran its baselines, a candidate and its verifications,
 * and moved the campaign's one best. A class counts when
 * - the maintainer approved it (admin.approveClass, or the dashboard), or
 * - it is the campaign's founding class: the class of its first measurement (a fresh campaign
 *   runs without the maintainer having to approve anything), or
 * - REPRODUCING_CONTRIBUTORS distinct contributors measured the current best on it (baselines,
 *   verifications: never claims) and their means agree within noise: more than one or two
 *   colluders can supply. It is then approved for good (`approved_by: reproduced`).
 * Candidates of any other class are held (decide.ts, `hold`); approving the class re-decides them.
 */
export const REPRODUCING_CONTRIBUTORS = 3

/** Workers seen within this long count as the class's active contributors. */
export const ACTIVE_WORKER_MS = 60 * 60 * 1000

export interface ClassStanding {
  approved: boolean
  by: 'maintainer' | 'reproduced' | 'founding' | null
  allowSelfVerification: boolean
}

const p = sql.placeholder
const q = prepared(db => ({
  row: db.select().from(hardwareClasses).where(and(eq(hardwareClasses.campaign, p('campaign')), eq(hardwareClasses.hardwareClass, p('cls')))).prepare(),
  first: db.select({ id: measurements.id, cls: measurements.hardwareClass }).from(measurements).where(eq(measurements.campaign, p('campaign'))).orderBy(asc(measurements.id)).limit(limitInText(1)).prepare(),
  byId: db.select({ campaign: measurements.campaign, cls: measurements.hardwareClass }).from(measurements).where(eq(measurements.id, p('id'))).prepare(),
  /**
   * Each campaign's first measurement, once it has one: measurements are only ever added, so it
   * stays the first, and finding it sorts all of the campaign's measurements (0.3 ms a decision
   * early in a benchmark run, growing with the campaign). It is checked by id on use, in case the
   * transaction that wrote it was rolled back.
   */
  founding: new Map<string, { id: number; cls: string }>(),
  ofBest: db.select({ valBpb: measurements.valBpb, contributorId: experiments.contributorId }).from(measurements)
    .innerJoin(experiments, eq(experiments.id, measurements.experimentId))
    .where(and(eq(measurements.campaign, p('campaign')), eq(measurements.commit, p('commit')), eq(measurements.hardwareClass, p('cls')),
      inArray(measurements.kind, ['baseline', 'verify']))).prepare(),
  active: db.select({ c: workers.contributorId }).from(workers)
    .where(and(eq(workers.hardwareClass, p('cls')), eq(workers.banned, false), gte(workers.lastSeen, p('since')))).groupBy(workers.contributorId).prepare(),
  /** activeContributors' answers by class: every lease asks, and reading the workers table each time costs O(workers). */
  activeCache: new Map<string, { at: number; ids: string[] }>(),
}))

/** How long an answer of activeContributors serves later leases: who is active changes slowly. */
const ACTIVE_CACHE_MS = 1000

export function classStanding(tx: Writer, c: Campaign, cls: string): ClassStanding {
  const row = q(tx).row.get({ campaign: c.name, cls })
  const allowSelfVerification = row?.allowSelfVerification ?? c.spec.noise.allowSelfVerification
  if (row?.approved) return { approved: true, by: row.approvedBy === 'reproduced' ? 'reproduced' : 'maintainer', allowSelfVerification }
  if (foundingClass(tx, c.name) === cls) return { approved: true, by: 'founding', allowSelfVerification }
  if (reproducedBest(tx, c, cls)) {
    upsertClass(tx, c.name, cls, { approved: true, approvedBy: 'reproduced' })
    logEvent(tx, c.name, 'class-approved', { hardwareClass: cls, by: 'reproduced' })
    return { approved: true, by: 'reproduced', allowSelfVerification }
  }
  return { approved: false, by: null, allowSelfVerification }
}

function foundingClass(tx: Writer, campaign: string): string | undefined {
  const { first, byId, founding } = q(tx)
  const known = founding.get(campaign)
  if (known) {
    const row = byId.get({ id: known.id })
    if (row?.campaign === campaign && row.cls === known.cls) return known.cls
  }
  const found = first.get({ campaign })
  if (found) founding.set(campaign, found)
  else founding.delete(campaign)
  return found?.cls
}

/**
 * Whether enough distinct contributors measured the best on the class and agree: every
 * contributor's mean within 2.25σ·√(1/n_k + 1/n) of the median of their means.
 */
function reproducedBest(tx: Writer, c: Campaign, cls: string): boolean {
  const runs = q(tx).ofBest.all({ campaign: c.name, commit: c.bestCommit, cls })
  const byContributor = new Map<string, number[]>()
  for (const r of runs) byContributor.set(r.contributorId, [...(byContributor.get(r.contributorId) ?? []), r.valBpb])
  if (byContributor.size < REPRODUCING_CONTRIBUTORS) return false
  const sigma = noiseFloorOf(tx, c.name, cls, c.spec.noise.priorSigma).sigma
  const centre = median([...byContributor.values()].map(mean))
  return [...byContributor.values()].every(v => Math.abs(mean(v) - centre) <= 2.25 * sigma * Math.sqrt(1 / v.length + 1 / runs.length))
}

/** Distinct contributors with a worker of the class seen lately (not banned). */
export function activeContributors(tx: Writer, cls: string, now: number): string[] {
  const { active, activeCache } = q(tx)
  const hit = activeCache.get(cls)
  if (hit && Math.abs(now - hit.at) < ACTIVE_CACHE_MS) return hit.ids
  if (activeCache.size > 100) activeCache.clear()
  const ids = active.all({ cls, since: now - ACTIVE_WORKER_MS }).map((r: { c: string }) => r.c)
  activeCache.set(cls, { at: now, ids })
  return ids
}

/**
 * Whether candidates of the class can be verified at all: by enough other active contributors,
 * or by the author where the class allows self-verification. A class that cannot gets no
 * exploration (scheduler), and the dashboard says why.
 */
export function canVerify(tx: Writer, c: Campaign, cls: string, now: number, standing = classStanding(tx, c, cls)): boolean {
  if (standing.allowSelfVerification || c.spec.noise.replications === 0) return true
  const needed = Math.min(2, c.spec.noise.replications)
  return activeContributors(tx, cls, now).length >= 1 + needed
}

/**
 * The same for a candidate of several authors (a rebase: the contributor whose worker runs it and
 * the origin's author, neither of whom is a witness): enough active contributors besides them.
 * Two contributors alone cannot verify a rebase that one of them runs of the other's idea.
 */
export function canVerifyAuthors(tx: Writer, c: Campaign, cls: string, now: number, authors: readonly string[], standing = classStanding(tx, c, cls)): boolean {
  if (standing.allowSelfVerification || c.spec.noise.replications === 0) return true
  const needed = Math.min(2, c.spec.noise.replications)
  return activeContributors(tx, cls, now).filter(id => !authors.includes(id)).length >= needed
}

export function upsertClass(tx: Writer, campaign: string, cls: string, set: Partial<Pick<typeof hardwareClasses.$inferInsert, 'approved' | 'approvedBy' | 'allowSelfVerification'>>): void {
  const now = Date.now()
  tx.insert(hardwareClasses).values({ campaign, hardwareClass: cls, ...set, updatedAt: now })
    .onConflictDoUpdate({ target: [hardwareClasses.campaign, hardwareClasses.hardwareClass], set: { ...set, updatedAt: now } }).run()
}

/** Every class the campaign has seen, with its standing, for the dashboard. */
export function listClasses(ctx: Ctx, c: Campaign) {
  const seen = ctx.db.select({ cls: measurements.hardwareClass }).from(measurements).where(eq(measurements.campaign, c.name))
    .groupBy(measurements.hardwareClass).all().map(r => r.cls)
  const ruled = ctx.db.select().from(hardwareClasses).where(eq(hardwareClasses.campaign, c.name)).all().map(r => r.hardwareClass)
  const now = ctx.now()
  return [...new Set([...seen, ...ruled])].sort().map(cls => {
    const standing = classStanding(ctx.db, c, cls)
    const contributors = activeContributors(ctx.db, cls, now).length
    const verifiable = canVerify(ctx.db, c, cls, now, standing)
    return {
      hardwareClass: cls, ...standing, activeContributors: contributors, canVerify: verifiable,
      note: !standing.approved ? 'not approved: its candidates are held until the maintainer approves the class'
        : !verifiable ? `cannot verify: ${contributors} active contributor(s), and verification needs other contributors; no exploration is scheduled (allow self-verification for this class to change that)`
        : null,
    }
  })
}

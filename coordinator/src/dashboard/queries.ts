import { and, desc, eq, gt, type like, or, sql, type SQL } from 'drizzle-orm'
import type { Ctx } from '../context.ts'
import { contributors, experiments, hypotheses, measurements, merges, unitContext, workUnits, workers } from '../db/schema.ts'
import { getCampaign } from '../campaigns/campaigns.ts'
import { noiseFloorOf } from '../measurements/noise-floor.ts'
import { progressCurve, type CurveExperiment } from './curve.ts'
import { effectiveReview } from '../review/policy.ts'
import { reviewOf } from '../review/queue.ts'
import { patchOf } from '../git/patch.ts'
import { sourceOf } from '../units/source-cache.ts'

/** Reads behind the dashboard's sections (and the status page); all scoped to a campaign but the workers'. */

/** A worker counts as online when it was heard from within this window (heartbeats come every 5 s). */
const ONLINE_MS = 60_000
/** The chart shows at most this many of the latest experiments. */
const CURVE_LIMIT = 5000

/** Runs that count for GPU-hours: they trained to the end and produced a sane metric. */
const VALID_RUN = sql`${experiments.valBpb} is not null and ${experiments.status} not in ('crash', 'rejected', 'rejected-unsafe')`
const TRAINING_HOURS = sql<number>`coalesce(sum(case when ${VALID_RUN} then json_extract(${experiments.metrics}, '$.training_seconds') else 0 end), 0) / 3600.0`

/** One campaign at a glance: what the status page and the dashboard's header show. */
export function overview(app: Ctx, name: string) {
  const c = getCampaign(app, name)
  if (!c) return null
  const counts = app.db.select({ status: experiments.status, n: sql<number>`count(*)` }).from(experiments)
    .where(eq(experiments.campaign, name)).groupBy(experiments.status).all()
  const best = app.db.select().from(experiments).where(and(eq(experiments.campaign, name), eq(experiments.commit, c.bestCommit))).get()
  const baseline = app.db.select().from(experiments).where(and(eq(experiments.campaign, name), eq(experiments.kind, 'baseline')))
    .orderBy(experiments.createdAt).get()
  return {
    name: c.name, branch: c.branch, status: c.status, spec: c.spec, bestCommit: c.bestCommit,
    // Who reviews candidates here, and the warning when that is a fallback (the page shows it as a banner).
    review: effectiveReview(c.spec.review, app.settings.reviewAgent !== null),
    bestValBpb: best?.valBpb ?? baseline?.valBpb ?? null,
    counts: Object.fromEntries(counts.map(r => [r.status, r.n])) as Record<string, number>,
    merges: app.db.select({ n: sql<number>`count(*)` }).from(merges).where(and(eq(merges.campaign, name), eq(merges.reverted, false))).get()!.n,
  }
}

export function recentExperiments(app: Ctx, campaign: string, limit: number) {
  return app.db.select({
    id: experiments.id, kind: experiments.kind, status: experiments.status, valBpb: experiments.valBpb, description: experiments.description,
    decision: experiments.decision, commit: experiments.commit, parentCommit: experiments.parentCommit, worker: workers.name,
    contributor: contributors.name, hardwareClass: experiments.hardwareClass, createdAt: experiments.createdAt,
  }).from(experiments)
    .leftJoin(workers, eq(workers.id, experiments.workerId)).leftJoin(contributors, eq(contributors.id, experiments.contributorId))
    .where(eq(experiments.campaign, campaign)).orderBy(desc(experiments.createdAt)).limit(limit).all()
}

/** Workers the public worker list shows: the most recently seen (`liveWorkers`). */
export const LIVE_WORKERS_SHOWN = 200

/**
 * The workers seen most lately, at most LIVE_WORKERS_SHOWN, each with the unit it holds. Public
 * (dashboard.workers, /status): it read every worker ever registered, one query each, and a name
 * costs a contributor one `hello` (test/hostile/worker-list.test.ts).
 */
export function liveWorkers(app: Ctx) {
  const rows = app.db.select({ id: workers.id, name: workers.name, hardwareClass: workers.hardwareClass, lastSeen: workers.lastSeen,
    banned: workers.banned, contributor: contributors.name }).from(workers).leftJoin(contributors, eq(contributors.id, workers.contributorId))
    .orderBy(desc(workers.lastSeen)).limit(LIVE_WORKERS_SHOWN).all()
  return rows.map(w => {
    const unit = app.db.select().from(workUnits).where(and(eq(workUnits.workerId, w.id), eq(workUnits.state, 'leased'))).orderBy(desc(workUnits.updatedAt)).get()
    return { ...w, unit: unit ? { id: unit.id, kind: unit.kind, campaign: unit.campaign, progress: unit.progress as { percent: number; step: number; loss: number | null } | null } : null }
  })
}

/** The header tiles: best, σ per class, pace and the fleet. */
export function summary(app: Ctx, campaign: string) {
  const o = overview(app, campaign)
  if (!o) return null
  const now = app.now()
  const classes = app.db.select({ hardwareClass: experiments.hardwareClass, n: sql<number>`count(*)` }).from(experiments)
    .where(eq(experiments.campaign, campaign)).groupBy(experiments.hardwareClass).orderBy(desc(sql`count(*)`)).all()
  // σ as the ratchet decides with it (measurements/noise-floor.ts).
  const noise = classes.map(c => ({ hardwareClass: c.hardwareClass, experiments: c.n, ...noiseFloorOf(app.db, campaign, c.hardwareClass, o.spec.noise.priorSigma) }))
  // The best as the ratchet sees it: the mean of the current best's samples on the busiest class.
  const primary = classes[0]?.hardwareClass ?? null
  const samples = primary === null ? [] : app.db.select({ valBpb: measurements.valBpb }).from(measurements)
    .where(and(eq(measurements.campaign, campaign), eq(measurements.commit, o.bestCommit), eq(measurements.hardwareClass, primary))).all().map(m => m.valBpb)
  const lastMerge = app.db.select({ valAfter: merges.valAfter }).from(merges)
    .where(and(eq(merges.campaign, campaign), eq(merges.reverted, false), eq(merges.bestAfter, o.bestCommit))).get()
  const bestValBpb = samples.length ? samples.reduce((s, v) => s + v, 0) / samples.length : lastMerge?.valAfter ?? o.bestValBpb
  const count = (where: SQL | undefined) => app.db.select({ n: sql<number>`count(*)` }).from(experiments).where(and(eq(experiments.campaign, campaign), where)).get()!.n
  const fleet = app.db.select({ online: sql<number>`sum(case when ${workers.lastSeen} > ${now - ONLINE_MS} then 1 else 0 end)`, total: sql<number>`count(*)` })
    .from(workers).where(eq(workers.banned, false)).get()!
  const hours = app.db.select({ h: TRAINING_HOURS }).from(experiments).where(eq(experiments.campaign, campaign)).get()!.h
  return {
    ...o,
    bestValBpb,
    bestSamples: samples.length,
    primaryClass: primary,
    noise,
    experiments: count(undefined),
    experimentsLastHour: count(gt(experiments.createdAt, now - 3600_000)),
    workersOnline: fleet.online ?? 0,
    workersTotal: fleet.total,
    gpuHours: hours,
    now,
  }
}

export function curve(app: Ctx, campaign: string) {
  const c = getCampaign(app, campaign)
  if (!c) return []
  const rows = app.db.select({
    id: experiments.id, createdAt: experiments.createdAt, kind: experiments.kind, status: experiments.status, hardwareClass: experiments.hardwareClass,
    valBpb: experiments.valBpb, commit: experiments.commit, parentCommit: experiments.parentCommit, description: experiments.description,
    contributor: contributors.name, valAfter: merges.valAfter, reverted: merges.reverted,
  }).from(experiments)
    .leftJoin(contributors, eq(contributors.id, experiments.contributorId))
    .leftJoin(merges, eq(merges.experimentId, experiments.id))
    .where(eq(experiments.campaign, campaign)).orderBy(desc(experiments.createdAt)).limit(CURVE_LIMIT).all()
  const list: CurveExperiment[] = rows.map(({ valAfter, reverted, ...e }) => ({ ...e, merge: valAfter === null ? null : { valAfter, reverted: !!reverted } }))
  return progressCurve(list, cls => noiseFloorOf(app.db, campaign, cls, c.spec.noise.priorSigma))
}

/**
 * Contributors ranked by what they moved: verified merges still on the branch, then the val_bpb
 * they took off, then the GPU time they gave.
 */
export function leaderboard(app: Ctx, campaign: string) {
  const runs = app.db.select({
    contributorId: experiments.contributorId,
    experiments: sql<number>`sum(case when ${experiments.kind} in ('explore', 'rebase') then 1 else 0 end)`,
    verifications: sql<number>`sum(case when ${experiments.kind} in ('baseline', 'verify') then 1 else 0 end)`,
    gpuHours: TRAINING_HOURS,
  }).from(experiments).where(eq(experiments.campaign, campaign)).groupBy(experiments.contributorId).all()
  const merged = app.db.select({ contributorId: experiments.contributorId, merges: sql<number>`count(*)`, delta: sql<number>`sum(-${merges.delta})` })
    .from(merges).innerJoin(experiments, eq(experiments.id, merges.experimentId))
    .where(and(eq(merges.campaign, campaign), eq(merges.reverted, false))).groupBy(experiments.contributorId).all()
  const names = new Map(app.db.select({ id: contributors.id, name: contributors.name }).from(contributors).all().map(c => [c.id, c.name]))
  const byId = new Map(merged.map(m => [m.contributorId, m]))
  return runs.map(r => ({
    contributor: names.get(r.contributorId) ?? r.contributorId,
    merges: byId.get(r.contributorId)?.merges ?? 0,
    deltaValBpb: byId.get(r.contributorId)?.delta ?? 0,
    experiments: r.experiments,
    verifications: r.verifications,
    gpuHours: r.gpuHours,
  })).sort((a, b) => b.merges - a.merges || b.deltaValBpb - a.deltaValBpb || b.gpuHours - a.gpuHours || a.contributor.localeCompare(b.contributor))
}

interface UnitProgress { step: number; percent: number; loss: number | null; remainingSeconds: number | null }

/** Every worker, online ones first, with the unit it is training and how far along it is. */
export function workerBoard(app: Ctx) {
  const now = app.now()
  const rows = app.db.select({ id: workers.id, name: workers.name, hardwareClass: workers.hardwareClass, lastSeen: workers.lastSeen,
    banned: workers.banned, contributor: contributors.name }).from(workers).leftJoin(contributors, eq(contributors.id, workers.contributorId))
    .orderBy(desc(workers.lastSeen)).limit(200).all()
  const units = app.db.select({ id: workUnits.id, workerId: workUnits.workerId, kind: workUnits.kind, campaign: workUnits.campaign, progress: workUnits.progress,
    updatedAt: workUnits.updatedAt, hypothesis: hypotheses.title }).from(workUnits).leftJoin(hypotheses, eq(hypotheses.id, workUnits.hypothesisId))
    .where(eq(workUnits.state, 'leased')).orderBy(desc(workUnits.updatedAt)).all()
  return {
    now,
    workers: rows.map(w => {
      const held = units.filter(u => u.workerId === w.id)
      const unit = held[0]
      return {
        ...w,
        online: !w.banned && now - w.lastSeen < ONLINE_MS,
        holding: held.length,
        unit: unit ? { id: unit.id, kind: unit.kind, campaign: unit.campaign, hypothesis: unit.hypothesis, progress: unit.progress as UnitProgress | null, updatedAt: unit.updatedAt } : null,
      }
    }).sort((a, b) => Number(b.online) - Number(a.online) || b.lastSeen - a.lastSeen),
  }
}

export interface ExperimentFilter {
  campaign: string
  status?: string
  kind?: string
  workerId?: string
  /** Words to find in the description, decision, names, hypothesis, id or commit. */
  text?: string
  limit: number
}

/**
 * Experiments a search by words reads at most: the campaign's newest. Anyone may search, and a
 * word nobody wrote reads every row it may, in the event loop, through each row's diff (the
 * decision is stored after it): over 2,000 experiments whose diffs a contributor had made 200 KB
 * each, one anonymous search held the coordinator for ~0.2 s (test/hostile/search-cost.test.ts).
 */
export const TEXT_SEARCH_WINDOW = 1000

/** The experiments list, newest first, narrowed by the filters the page offers. */
export function listExperiments(app: Ctx, f: ExperimentFilter) {
  const where: (SQL | undefined)[] = [eq(experiments.campaign, f.campaign)]
  if (f.status) where.push(eq(experiments.status, f.status as never))
  if (f.kind) where.push(eq(experiments.kind, f.kind as never))
  if (f.workerId) where.push(eq(experiments.workerId, f.workerId))
  const words = (f.text ?? '').trim().split(/\s+/).filter(Boolean).slice(0, 8)
  // Words are found among the campaign's newest TEXT_SEARCH_WINDOW experiments only (see there).
  if (words.length) where.push(sql`${experiments.id} in (select ${experiments.id} from ${experiments} where ${experiments.campaign} = ${f.campaign} order by ${experiments.createdAt} desc limit ${TEXT_SEARCH_WINDOW})`)
  for (const word of words) {
    const pattern = `%${word.replace(/[\\%_]/g, ch => `\\${ch}`)}%`
    const match = (col: Parameters<typeof like>[0]) => sql`${col} like ${pattern} escape '\\'`
    where.push(or(match(experiments.description), match(experiments.decision), match(experiments.id), match(experiments.commit),
      match(workers.name), match(contributors.name), match(hypotheses.title)))
  }
  return app.db.select({
    id: experiments.id, kind: experiments.kind, status: experiments.status, valBpb: experiments.valBpb, description: experiments.description,
    decision: experiments.decision, commit: experiments.commit, parentCommit: experiments.parentCommit, workerId: experiments.workerId,
    worker: workers.name, contributor: contributors.name, hardwareClass: experiments.hardwareClass, hypothesis: hypotheses.title,
    createdAt: experiments.createdAt, reverted: merges.reverted,
  }).from(experiments)
    .leftJoin(workers, eq(workers.id, experiments.workerId)).leftJoin(contributors, eq(contributors.id, experiments.contributorId))
    .leftJoin(hypotheses, eq(hypotheses.id, experiments.hypothesisId)).leftJoin(merges, eq(merges.experimentId, experiments.id))
    .where(and(...where)).orderBy(desc(experiments.createdAt)).limit(f.limit).all()
}

/**
 * One experiment with everything behind its decision: the samples of the commit it measured and
 * of its parent on the same class, the merge it made, and the diff as the coordinator's git sees
 * it (the worker's own diff is only a fallback: it is the worker's word, the commit is what ran).
 */
export async function experimentDetail(app: Ctx, id: string) {
  const e = app.db.select().from(experiments).where(eq(experiments.id, id)).get()
  if (!e) return null
  const own = app.db.select({ commit: measurements.commit }).from(measurements).where(eq(measurements.experimentId, id)).get()
  const measured = own?.commit ?? e.commit
  const samples = (commit: string) => app.db.select({ valBpb: measurements.valBpb, experimentId: measurements.experimentId, kind: experiments.kind,
    worker: workers.name, createdAt: experiments.createdAt }).from(measurements)
    .leftJoin(experiments, eq(experiments.id, measurements.experimentId)).leftJoin(workers, eq(workers.id, measurements.workerId))
    .where(and(eq(measurements.campaign, e.campaign), eq(measurements.commit, commit), eq(measurements.hardwareClass, e.hardwareClass)))
    .orderBy(measurements.id).all()
  const merge = app.db.select().from(merges).where(eq(merges.experimentId, id)).get() ?? null
  // Verifiers are worker ids: show their names.
  const verifiers = Array.isArray(merge?.verifiers) ? (merge.verifiers as unknown[]).map(v => {
    const w = typeof v === 'string' ? app.db.select({ name: workers.name, contributor: contributors.name }).from(workers)
      .leftJoin(contributors, eq(contributors.id, workers.contributorId)).where(eq(workers.id, v)).get() : undefined
    return w ? `${w.name} (${w.contributor ?? '?'})` : String(v)
  }) : []
  const hypothesis = e.hypothesisId ? app.db.select({ id: hypotheses.id, title: hypotheses.title, body: hypotheses.body }).from(hypotheses).where(eq(hypotheses.id, e.hypothesisId)).get() ?? null : null
  const c = getCampaign(app, e.campaign)
  let diff = e.diff
  try {
    // Made here from the two sources (cached, read through git's long-lived pipe) as a report's diff
    // is (git/patch.ts): an anonymous reader asking for one experiment after another started a git
    // process for each. A source too long for that, or binary, still goes to git.
    const files = c?.spec.editableFiles
    const here = files ? patchOf(await sourceOf(app, e.parentCommit, files), await sourceOf(app, e.commit, files)) : undefined
    diff = (here ?? (await app.git.diff(e.parentCommit, e.commit))) || e.diff
  } catch {
    // The commit is written before the experiment row, so this only happens to a damaged store.
  }
  return {
    ...e, diff, merge: merge && { ...merge, verifiers }, worker: app.db.select({ name: workers.name }).from(workers).where(eq(workers.id, e.workerId)).get()?.name ?? null,
    contributor: app.db.select({ name: contributors.name }).from(contributors).where(eq(contributors.id, e.contributorId)).get()?.name ?? null, hypothesis,
    measuredCommit: measured,
    samples: { measured: samples(measured), parent: measured === e.parentCommit ? [] : samples(e.parentCommit) },
    noise: c ? noiseFloorOf(app.db, e.campaign, e.hardwareClass, c.spec.noise.priorSigma) : null,
    review: reviewOf(app, e.id),
    // The program.md version its unit carried and the agent that made the candidate (swarm/claim.ts).
    unit: app.db.select({ programVersion: unitContext.programVersion, agent: unitContext.agent }).from(unitContext).where(eq(unitContext.unitId, e.unitId)).get() ?? null,
  }
}

/** Merges newest first, with whose experiment each was: what the maintainer may revert. */
export function mergeList(app: Ctx, campaign: string) {
  return app.db.select({
    id: merges.id, experimentId: merges.experimentId, bestBefore: merges.bestBefore, bestAfter: merges.bestAfter, valBefore: merges.valBefore,
    valAfter: merges.valAfter, delta: merges.delta, sigma: merges.sigma, hardwareClass: merges.hardwareClass, reverted: merges.reverted, reviewer: merges.reviewer,
    createdAt: merges.createdAt, experimentAt: experiments.createdAt, description: experiments.description, contributor: contributors.name,
  }).from(merges).leftJoin(experiments, eq(experiments.id, merges.experimentId)).leftJoin(contributors, eq(contributors.id, experiments.contributorId))
    .where(eq(merges.campaign, campaign)).orderBy(desc(merges.createdAt)).limit(200).all()
}

/** The queue: open ideas by priority first, then the rest newest first. */
export function hypothesisQueue(app: Ctx, campaign: string) {
  const rows = app.db.select().from(hypotheses).where(eq(hypotheses.campaign, campaign)).orderBy(desc(hypotheses.priority), hypotheses.createdAt).limit(500).all()
  const waiting = new Set(['open', 'in-progress'])
  return [...rows.filter(h => waiting.has(h.status)), ...rows.filter(h => !waiting.has(h.status)).sort((a, b) => b.createdAt - a.createdAt)]
}

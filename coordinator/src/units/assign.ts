import { and, desc, eq, inArray, isNull, or, sql } from 'drizzle-orm'
import { MEASURING_KINDS, type WorkUnit } from '@autoresearch-grid/shared'
import type { Ctx } from '../context.ts'
import { experiments, hypotheses, measurements, workUnits } from '../db/schema.ts'
import { logEvent } from '../events/log.ts'
import type { Writer } from '../db/open.ts'
import { limitInText, prepared } from '../db/prepared.ts'
import { getCampaign, listCampaigns, type Campaign } from '../campaigns/campaigns.ts'
import type { Worker } from '../workers/registry.ts'
import { leaseSeconds } from './leases.ts'
import { nextUnit, type SchedulerInput } from '../scheduler/index.ts'
import { unitExtras } from '../swarm/unit-extras.ts'
import { recordUnitContext } from '../swarm/claim.ts'
import { currentProgramVersion } from '../campaigns/program.ts'
import { drawVerifiers, excludedOf } from './verifier-draw.ts'
import { suspectContributors } from './suspects.ts'
import { canVerify, canVerifyAuthors, classStanding } from '../classes/approval.ts'
import { workers } from '../db/schema.ts'
import { createUnit, getUnit, leaseUnit, newLeaseToken, type Unit } from './lifecycle.ts'
import { sourceOf } from './source-cache.ts'
import { creditCheck, outOfCredit } from './reciprocity.ts'

const p = sql.placeholder
/**
 * Queued units of each kind a lease looks at: the oldest this many that fit the worker's class.
 * The scheduler takes the oldest unit it may run, so a longer queue changes its answer only when
 * all of these are closed to the worker (another's verification of its own contributor's
 * candidate, say); then it explores instead and the unit waits for another worker.
 */
const QUEUE_WINDOW = 64
const KINDS = ['baseline', 'verify', 'rebase', 'explore'] as const
/**
 * The oldest queued units of one kind that a worker of this class could take (see `snapshot`), in
 * the order of `work_units_queue`: SQLite walks the index and stops at the window, whatever the
 * length of the queue (test/db/indexes.test.ts).
 */
export const queuedWindowQuery = (db: Writer) => db.select().from(workUnits).where(and(eq(workUnits.state, 'queued'), eq(workUnits.campaign, p('campaign')),
  eq(workUnits.kind, p('kind')), or(isNull(workUnits.hardwareClass), eq(workUnits.hardwareClass, p('cls'))))).orderBy(workUnits.createdAt, workUnits.id).limit(limitInText(QUEUE_WINDOW))
/** Every lease runs these: prepared once (db/prepared.ts). */
const q = prepared(db => ({
  leased: db.select({ n: sql<number>`count(*)` }).from(workUnits).where(and(eq(workUnits.workerId, p('worker')), eq(workUnits.state, 'leased'))).prepare(),
  // From the contributor's workers to their leased units (both through indexes). As a join, SQLite
  // read every leased unit of the coordinator and looked up its worker: 2.6 ms a lease at 1,000
  // workers, ten times that at 10,000 (docs/PERFORMANCE.md, "Coordinator under load").
  leasedByContributor: db.select({ n: sql<number>`count(*)` }).from(workUnits)
    .where(and(eq(workUnits.state, 'leased'), inArray(workUnits.workerId, db.select({ id: workers.id }).from(workers).where(eq(workers.contributorId, p('contributor')))))).prepare(),
  queued: queuedWindowQuery(db).prepare(),
  runningBaselines: db.select().from(workUnits)
    .where(and(eq(workUnits.campaign, p('campaign')), eq(workUnits.kind, 'baseline'), eq(workUnits.state, 'leased'), eq(workUnits.parentCommit, p('best')))).prepare(),
  openHypotheses: db.select().from(hypotheses).where(and(eq(hypotheses.campaign, p('campaign')), inArray(hypotheses.status, ['open', 'in-progress']))).prepare(),
  // Units of the open hypotheses (a JSON array of ids) on the best. Prepared once with the ids
  // through json_each: built by drizzle with an IN list on every lease it cost ~145 µs with 20
  // hypotheses open, ~4 µs so. The unary `+` keeps SQLite off the campaign's index: without
  // statistics it planned this form on `work_units_kind (campaign=?)`, reading every unit of the
  // campaign; so it goes through `work_units_hypothesis` (docs/PERFORMANCE.md, "Seventh pass").
  onBest: db.select({ h: workUnits.hypothesisId, kind: workUnits.kind, state: workUnits.state, unit: workUnits }).from(workUnits)
    .where(and(sql`${workUnits.hypothesisId} in (select value from json_each(${p('ids')}))`, eq(workUnits.parentCommit, p('best')),
      sql`+${workUnits.campaign} = ${p('campaign')}`)).prepare(),
  // Who measured a commit on a class (baselines and verifications), by contributor; who runs its
  // baselines; and who holds a unit of the campaign on the class: read only while the best's
  // baselines on the class are being handed out (`baselineShares`).
  measuredByContributor: db.select({ c: experiments.contributorId, n: sql<number>`count(*)` }).from(measurements)
    .innerJoin(experiments, eq(experiments.id, measurements.experimentId))
    .where(and(eq(measurements.campaign, p('campaign')), eq(measurements.commit, p('commit')), eq(measurements.hardwareClass, p('cls')),
      inArray(measurements.kind, [...MEASURING_KINDS]))).groupBy(experiments.contributorId).prepare(),
  runningBaselinesByContributor: db.select({ c: workers.contributorId, n: sql<number>`count(*)` }).from(workUnits).innerJoin(workers, eq(workers.id, workUnits.workerId))
    .where(and(eq(workUnits.campaign, p('campaign')), eq(workUnits.kind, 'baseline'), eq(workUnits.state, 'leased'), eq(workUnits.parentCommit, p('commit')),
      eq(workers.hardwareClass, p('cls')))).groupBy(workers.contributorId).prepare(),
  atWork: db.select({ c: workers.contributorId }).from(workUnits).innerJoin(workers, eq(workers.id, workUnits.workerId))
    .where(and(eq(workUnits.state, 'leased'), eq(workUnits.campaign, p('campaign')), eq(workers.hardwareClass, p('cls')))).groupBy(workers.contributorId).prepare(),
  measuredOf: db.select({ commit: measurements.commit, cls: measurements.hardwareClass, worker: measurements.workerId }).from(measurements)
    .where(and(eq(measurements.campaign, p('campaign')), eq(measurements.commit, p('commit')))).prepare(),
  startHypothesis: db.update(hypotheses).set({ status: 'in-progress' }).where(and(eq(hypotheses.id, p('id')), eq(hypotheses.status, 'open'))).prepare(),
  hypothesis: db.select().from(hypotheses).where(eq(hypotheses.id, p('id'))).prepare(),
  experiment: db.select().from(experiments).where(eq(experiments.id, p('id'))).prepare(),
  contributorOf: db.select({ c: experiments.contributorId }).from(experiments).where(eq(experiments.id, p('id'))).prepare(),
  tried: db.select({ d: experiments.description }).from(experiments)
    .where(and(eq(experiments.campaign, p('campaign')), eq(experiments.parentCommit, p('parent')), eq(experiments.kind, 'explore')))
    .orderBy(desc(experiments.createdAt)).limit(limitInText(200)).prepare(),
  /** triedOn's answers by campaign and parent, for this database. */
  triedCache: new Map<string, { at: number; descriptions: string[] }>(),
}))

/**
 * A snapshot of a campaign's queue, in the scheduler's terms (a pure choice is made over it). It
 * holds only what the choice can depend on, read through indexes, so a lease costs the same with
 * 10 or 10,000 units out: the oldest queued units of each kind that fit the worker's class
 * (QUEUE_WINDOW); of the leased ones, baselines of the best (counted against the baselines
 * wanted) and explorations of a hypothesis on the best (taken); and for each
 * open hypothesis, whether it was tried on the best (the scheduler asks nothing else of `triedOn`).
 * Reading every leased unit and every measurement of the campaign made each lease O(N), and the
 * assignment feed stalled at a few thousand workers (docs/PERFORMANCE.md, "Coordinator under load").
 */
function snapshot(tx: Writer, c: Campaign, worker: Worker, now: number, reserveMs: number): { input: SchedulerInput; drawn: boolean } {
  const best = c.bestCommit
  const suspects = suspectContributors(tx, c.name, c.spec.noise.priorSigma)
  const standings = new Map<string, boolean>()
  const approved = (cls: string): boolean => {
    let ok = standings.get(cls)
    if (ok === undefined) standings.set(cls, (ok = classStanding(tx, c, cls).approved))
    return ok
  }
  // The contributor of each target experiment, read once: the draw asks for every worker of its pool.
  const authors = new Map<string, string | null>()
  const authorOf = (experiment: string) => {
    if (!authors.has(experiment)) authors.set(experiment, q(tx).contributorOf.get({ id: experiment })?.c ?? null)
    return authors.get(experiment)!
  }
  const credit = creditCheck(tx, c.name)
  const draw = drawVerifiers(tx, KINDS.flatMap(kind => q(tx).queued.all({ campaign: c.name, kind, cls: worker.hardwareClass })), now, reserveMs, suspects, approved,
    (verifier, u) => credit(verifier, (u.targetExperiment ? authorOf(u.targetExperiment) : null) ?? ''))
  // A classless verification (the pooled policy) is for approved classes only: elsewhere its run would count for nothing.
  const queued = draw.units.filter(u => !(u.kind === 'verify' && u.hardwareClass === null && !approved(worker.hardwareClass)))
  const runningBaselines = q(tx).runningBaselines.all({ campaign: c.name, best })
  const hs = q(tx).openHypotheses.all({ campaign: c.name })
  const onBest = hs.length ? q(tx).onBest.all({ ids: JSON.stringify(hs.map(h => h.id)), best, campaign: c.name }) : []
  const takenExplores = onBest.filter(u => u.kind === 'explore' && u.state === 'leased').map(u => u.unit)
  const verifyTargets = [...new Set(queued.filter(u => u.kind === 'verify' && u.targetCommit).map(u => u.targetCommit!))]
  const measured = [best, ...verifyTargets].flatMap(commit => q(tx).measuredOf.all({ campaign: c.name, commit }))
  // A verification is closed to every worker of the candidate's contributor, not only its own worker.
  const contributorOf = new Map(queued.filter(u => (u.kind === 'verify' || u.kind === 'rebase') && u.targetExperiment).map(u => u.targetExperiment!)
    .map(e => [e, authorOf(e)]))
  const standing = classStanding(tx, c, worker.hardwareClass)
  // A rebase this worker runs has two authors, its contributor and the origin's: can anyone else verify it?
  const verifiable = (u: (typeof queued)[number]) => canVerifyAuthors(tx, c, worker.hardwareClass, now,
    [worker.contributorId, ...(u.targetExperiment ? [contributorOf.get(u.targetExperiment) ?? ''] : [])], standing)
  const baselines: Record<string, number> = {}
  const measuredBy = new Map<string, string[]>()
  for (const m of measured) {
    if (m.commit === best) baselines[m.cls] = (baselines[m.cls] ?? 0) + 1
    let by = measuredBy.get(m.commit)
    if (!by) measuredBy.set(m.commit, (by = []))
    by.push(m.worker)
  }
  const units = [...queued, ...runningBaselines, ...takenExplores]
  const cls = worker.hardwareClass
  const handingOutBaselines = queued.some(u => u.kind === 'baseline' && u.parentCommit === best && u.hardwareClass === cls) ||
    (baselines[cls] ?? 0) + runningBaselines.filter(u => u.hardwareClass === cls).length < c.spec.noise.baselineRuns
  const input: SchedulerInput = {
    worker: { id: worker.id, contributorId: worker.contributorId, hardwareClass: worker.hardwareClass },
    best,
    baselines,
    units: units.map(u => ({
      id: u.id, kind: u.kind, commit: u.kind === 'verify' ? u.targetCommit! : u.parentCommit, hardwareClass: u.hardwareClass,
      candidateWorkerId: u.excludedWorker, candidateContributorId: u.targetExperiment ? contributorOf.get(u.targetExperiment) : null, measuredBy: u.kind === 'verify' ? measuredBy.get(u.targetCommit!) ?? [] : [],
      excludedContributorIds: (u.kind === 'verify' || u.kind === 'rebase') && u.excludedContributors ? excludedOf(u) : null,
      reservedFor: u.state === 'queued' && (u.reservedUntil ?? 0) > now ? u.reservedFor : null,
      verifiable: u.kind === 'rebase' && u.state === 'queued' ? verifiable(u) : undefined,
      hypothesisId: u.hypothesisId, leasedTo: u.state === 'leased' ? u.workerId : null, queuedAt: u.createdAt,
    })),
    hypotheses: hs.map(h => ({ id: h.id, priority: h.priority, status: h.status, createdAt: h.createdAt, triedOn: onBest.some(t => t.h === h.id) ? [best] : [] })),
    settings: { baselineRuns: c.spec.noise.baselineRuns, allowSelfVerification: c.spec.noise.allowSelfVerification },
    suspectContributorIds: suspects,
    baselineShares: handingOutBaselines ? baselineShares(tx, c.name, best, cls, worker.contributorId, suspects) : undefined,
    explorationAllowed: canVerify(tx, c, worker.hardwareClass, now, standing),
    outOfCredit: queued.some(u => u.kind === 'verify') ? outOfCredit(tx, c.name, worker.contributorId) : undefined,
  }
  return { input, drawn: draw.drawn }
}

/** The scheduler's `baselineShares`: the best's runs on a class by contributor, and who else is at work there. */
function baselineShares(tx: Writer, campaign: string, best: string, cls: string, me: string, suspects: readonly string[]): SchedulerInput['baselineShares'] {
  const byContributor: Record<string, number> = {}
  const at = { campaign, commit: best, cls }
  for (const r of [...q(tx).measuredByContributor.all(at), ...q(tx).runningBaselinesByContributor.all(at)]) byContributor[r.c] = (byContributor[r.c] ?? 0) + r.n
  const others = q(tx).atWork.all({ campaign, cls }).map(r => r.c).filter(id => id !== me && !suspects.includes(id))
  return { byContributor, others }
}

/**
 * Leases the most valuable unit for an idle worker (DESIGN §8, chosen by scheduler/next-unit.ts):
 * baselines of the best for its class, verifications it may run, rebases, then exploration.
 * Synchronous, inside one transaction: two workers asking at once cannot get the same unit.
 */
export function leaseNextUnit(ctx: Ctx, worker: Worker, eligible: (c: Campaign) => boolean): Unit | null {
  const now = ctx.now()
  const drawnIn = new Set<string>()
  const leased = ctx.db.transaction(tx => {
    // Per-contributor quota on open units: one person with many workers or tokens' worth of
    // workers cannot take the whole queue (issue 15).
    if (q(tx).leasedByContributor.get({ contributor: worker.contributorId })!.n >= (ctx.settings.maxOpenUnitsPerContributor ?? DEFAULT_MAX_OPEN_UNITS)) return null
    for (const c of listCampaigns({ db: tx as never }).filter(c => c.status === 'active' && eligible(c))) {
      const { input, drawn } = snapshot(tx, c, worker, now, leaseSeconds(c, ctx.settings) * 1000)
      if (drawn) drawnIn.add(c.name)
      const choice = nextUnit(input)
      if (choice.action === 'none') continue
      const unit: Unit = choice.action === 'lease'
        ? getUnit(tx, choice.unitId)!
        : createUnit(tx, choice.kind === 'baseline'
          ? { kind: 'baseline', campaign: c.name, hypothesisId: null, parentCommit: choice.commit, hardwareClass: choice.hardwareClass }
          : { kind: 'explore', campaign: c.name, hypothesisId: choice.hypothesisId, parentCommit: choice.parentCommit }, now)
      if (unit.hypothesisId) q(tx).startHypothesis.run({ id: unit.hypothesisId })
      const lease = { workerId: worker.id, leaseToken: newLeaseToken(), leaseExpiresAt: now + leaseSeconds(c, ctx.settings) * 1000,
        state: 'leased' as const, attempts: unit.attempts + 1, updatedAt: now, leasedAt: now, progress: null }
      leaseUnit(tx, unit.id, { workerId: lease.workerId, token: lease.leaseToken, expiresAt: lease.leaseExpiresAt }, now)
      recordUnitContext(tx, unit, currentProgramVersion({ db: tx as never }, c.name))
      logEvent(tx, c.name, 'unit-leased', { unit: unit.id, kind: unit.kind, worker: worker.id, hypothesis: unit.hypothesisId, reason: choice.reason })
      return { ...unit, ...lease }
    }
    return null
  })
  // A drawn verifier that is idle now must hear that a unit waits for it.
  for (const name of drawnIn) ctx.bus.emit({ type: 'work-available', campaign: name })
  return leased
}

/** Units a contributor's workers may hold at once, all together, unless the settings say otherwise. */
export const DEFAULT_MAX_OPEN_UNITS = 32

/** Turns a leased unit row into the message a worker receives (reads the source from git). */
export async function toWorkUnit(ctx: Ctx, unit: Unit): Promise<WorkUnit> {
  const c = getCampaign(ctx, unit.campaign)!
  const commit = unit.kind === 'verify' && unit.targetCommit ? unit.targetCommit : unit.parentCommit
  const h = unit.hypothesisId ? q(ctx.db).hypothesis.get({ id: unit.hypothesisId }) : undefined
  const tried = triedOn(ctx, c.name, unit.parentCommit)
  const target = unit.targetExperiment ? q(ctx.db).experiment.get({ id: unit.targetExperiment }) : undefined
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
    // The diff's own parent, so the worker can re-apply it with a three-way merge.
    referenceBase: unit.kind === 'rebase' && target ? await sourceOf(ctx, target.parentCommit, c.spec.editableFiles) : null,
    triedOnParent: tried,
    // program.md and the swarm's memory (swarm/unit-extras.ts).
    ...(await unitExtras(ctx, c, unit)),
  }
}

/**
 * What was explored on a parent, newest first, for agents to avoid repeats. Advice, not a rule: a
 * list up to a second old serves every lease meanwhile, where reading 200 rows each time cost more
 * than the rest of a lease together.
 */
function triedOn(ctx: Ctx, campaign: string, parent: string): string[] {
  const key = `${campaign}\0${parent}`
  const now = Date.now()
  const { tried, triedCache } = q(ctx.db)
  let t = triedCache.get(key)
  if (!t || now - t.at > 1000) {
    if (triedCache.size > 100) triedCache.clear()
    t = { at: now, descriptions: tried.all({ campaign, parent }).map(r => r.d) }
    triedCache.set(key, t)
  }
  return t.descriptions
}

export function leasedCount(ctx: Pick<Ctx, 'db'>, workerId: string): number {
  return q(ctx.db).leased.get({ worker: workerId })!.n
}

import { and, eq, inArray, sql } from 'drizzle-orm'
import type { Writer } from '../db/open.ts'
import { prepared } from '../db/prepared.ts'
import type { Campaign } from '../campaigns/campaigns.ts'
import { decidedCounts, experiments, measurements, workUnits } from '../db/schema.ts'
import { carriedFrom, DEFAULT_SEQUENTIAL, poolsClasses, realRateOf, sequentialSettingsOf, type CarriedEvidence, type ClassRuns } from '../ratchet/index.ts'
import { classStanding } from '../classes/approval.ts'
import { noiseFloorOf } from '../measurements/noise-floor.ts'

/**
 * What the `sequential` policy reads besides a candidate's own runs (ratchet/decide-sequential.ts):
 * the campaign's observed rate of real gains, which sets the bar to merge, and the evidence a
 * candidate carried onto a newer best brings from the experiments it came from. Both are
 * recomputed from rows the coordinator keeps anyway (experiments, measurements, the rebase unit
 * that names a carried candidate's origin), so the policy needs no column of its own.
 */

type Experiment = typeof experiments.$inferSelect

// Read at every sequential decision: the counts triggers keep (db/schema.ts `decidedCounts`).
const q = prepared(db => ({
  decided: db.select({ status: decidedCounts.status, n: decidedCounts.n }).from(decidedCounts).where(eq(decidedCounts.campaign, sql.placeholder('campaign'))).prepare(),
}))

/**
 * Merges among decided candidates (explorations and the rebases that carry an idea on: each idea
 * is decided once, at its last commit; its stale ancestors are not counted). Only measured ones: an
 * exploration recorded as a reuse of code measured before (units/reuse.ts: no run, no val_bpb) is
 * no new idea decided. Counted, a heuristic worker with nothing left to try on a parent (it
 * reports its parent's code again, at once, over and over) made hundreds of "decided" candidates a
 * minute, the observed rate of gains fell toward 0, the bar to merge rose past what any candidate
 * reached, and the parent never changed (a stalled e2e run: 952 such records, merge at log LR 10.8).
 */
export function realRateOfCampaign(tx: Writer, c: Campaign): number {
  const rows = q(tx).decided.all({ campaign: c.name })
  const decided = rows.reduce((a, r) => a + r.n, 0)
  return realRateOf(rows.find(r => r.status === 'kept')?.n ?? 0, decided, DEFAULT_SEQUENTIAL)
}

/**
 * The evidence a candidate carried onto a newer best (a three-way merge or a rebase: a `rebase`
 * experiment whose unit targets its origin) inherits: its origin's runs against the origin's own
 * parent, on the origin's class and, under `pooled` and `parallel`, on every other approved class,
 * combined with what the origin carried in turn; the runs of `suspects` left out, as the verdict
 * leaves them out (units/judge.ts). Undefined for an original candidate.
 */
export function carriedEvidenceOf(tx: Writer, c: Campaign, exp: Experiment, suspects: ReadonlySet<string> = new Set(), hops = 0): CarriedEvidence | undefined {
  const origin = hops > MAX_HOPS ? undefined : originOf(tx, exp)
  if (!origin) return undefined
  const further = carriedEvidenceOf(tx, c, origin, suspects, hops + 1)
  const runsOf = (commit: string, cls: string, kinds: Experiment['kind'][]) => tx.select({ valBpb: measurements.valBpb, workerId: measurements.workerId, contributorId: experiments.contributorId,
    trainingSeconds: measurements.trainingSeconds }).from(measurements).innerJoin(experiments, eq(experiments.id, measurements.experimentId))
    .where(and(eq(measurements.campaign, c.name), eq(measurements.commit, commit), eq(measurements.hardwareClass, cls), inArray(measurements.kind, kinds))).all()
    .filter(r => !suspects.has(r.contributorId))
  const runs = runsOf(origin.commit, origin.hardwareClass, ['explore', 'rebase', 'verify'])
  const parent = runsOf(origin.parentCommit, origin.hardwareClass, ['baseline', 'verify']).map(r => ({ valBpb: r.valBpb, contributorId: r.contributorId }))
  const sigma = noiseFloorOf(tx, c.name, origin.hardwareClass, c.spec.noise.priorSigma).sigma
  // `pooled` and `parallel`: the origin's verdict pooled its verifications on every approved class,
  // so its change carries them all (each against the origin's parent on that class, in that class's
  // σ). Carried from its own class alone, the grid's `pooled` took 66.0 runs per merge against 58.2
  // (docs/RATCHET.md, "Fourth round, session 14").
  const elsewhere: ClassRuns[] = !poolsClasses(c.spec.noise.policy) ? [] : tx.select({ cls: measurements.hardwareClass }).from(measurements)
    .where(and(eq(measurements.campaign, c.name), eq(measurements.commit, origin.commit))).groupBy(measurements.hardwareClass).all()
    .map(r => r.cls).filter(cls => cls !== origin.hardwareClass && classStanding(tx, c, cls).approved)
    .map(cls => ({ hardwareClass: cls, samples: runsOf(origin.commit, cls, ['verify']), sigma: noiseFloorOf(tx, c.name, cls, c.spec.noise.priorSigma).sigma,
      parentRuns: runsOf(origin.parentCommit, cls, ['baseline', 'verify']).map(r => ({ valBpb: r.valBpb, contributorId: r.contributorId })) }))
  // Whose runs are no independent evidence: every author along the chain (a superset of the
  // carried claim's author, units/judge.ts carriedClaimOf, so never more lenient).
  const authors = new Set<string>()
  for (let e: Experiment | undefined = origin, i = 0; e && i <= MAX_HOPS; e = originOf(tx, e), i++) authors.add(e.contributorId)
  const seq = sequentialSettingsOf(c.spec.noise.policy)
  return carriedFrom(runs, parent, sigma, authors, further, seq, elsewhere)
}

/** Carried candidates are followed back this far at most (a chain of merges onto newer bests). */
const MAX_HOPS = 20

/**
 * The experiment a carried candidate came from: its rebase unit's target; none for a rebase whose
 * code is not its origin's change re-applied (`carriesOrigin` false, units/rebase-content.ts).
 */
function originOf(tx: Writer, exp: Experiment): Experiment | undefined {
  if (exp.kind !== 'rebase' || exp.carriesOrigin === false) return undefined
  const target = tx.select({ target: workUnits.targetExperiment }).from(workUnits).where(eq(workUnits.id, exp.unitId)).get()?.target
  return target ? tx.select().from(experiments).where(eq(experiments.id, target)).get() : undefined
}

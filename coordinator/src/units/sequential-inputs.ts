import { and, eq, inArray, sql } from 'drizzle-orm'
import type { Writer } from '../db/open.ts'
import type { Campaign } from '../campaigns/campaigns.ts'
import { experiments, measurements, workUnits } from '../db/schema.ts'
import { carriedFrom, DEFAULT_SEQUENTIAL, realRateOf, sequentialSettingsOf, type CarriedEvidence } from '../ratchet/index.ts'
import { noiseFloorOf } from '../measurements/noise-floor.ts'

/**
 * What the `sequential` policy reads besides a candidate's own runs (ratchet/decide-sequential.ts):
 * the campaign's observed rate of real gains, which sets the bar to merge, and the evidence a
 * candidate carried onto a newer best brings from the experiments it came from. Both are
 * recomputed from rows the coordinator keeps anyway (experiments, measurements, the rebase unit
 * that names a carried candidate's origin), so the policy needs no column of its own.
 */

type Experiment = typeof experiments.$inferSelect

/**
 * Merges among decided candidates (explorations and the rebases that carry an idea on: each idea
 * is decided once, at its last commit; its stale ancestors are not counted).
 */
export function realRateOfCampaign(tx: Writer, c: Campaign): number {
  const rows = tx.select({ status: experiments.status, n: sql<number>`count(*)` }).from(experiments)
    .where(and(eq(experiments.campaign, c.name), inArray(experiments.kind, ['explore', 'rebase']), inArray(experiments.status, ['kept', 'discarded', 'rejected'])))
    .groupBy(experiments.status).all()
  const decided = rows.reduce((a, r) => a + r.n, 0)
  return realRateOf(rows.find(r => r.status === 'kept')?.n ?? 0, decided, DEFAULT_SEQUENTIAL)
}

/**
 * The evidence a candidate carried onto a newer best (a three-way merge or a rebase: a `rebase`
 * experiment whose unit targets its origin) inherits: its origin's runs against the origin's own
 * parent, on the origin's class, combined with what the origin carried in turn. Undefined for an
 * original candidate.
 */
export function carriedEvidenceOf(tx: Writer, c: Campaign, exp: Experiment, hops = 0): CarriedEvidence | undefined {
  const origin = hops > MAX_HOPS ? undefined : originOf(tx, exp)
  if (!origin) return undefined
  const further = carriedEvidenceOf(tx, c, origin, hops + 1)
  const runsOf = (commit: string, kinds: Experiment['kind'][]) => tx.select({ valBpb: measurements.valBpb, workerId: measurements.workerId, contributorId: experiments.contributorId,
    trainingSeconds: measurements.trainingSeconds }).from(measurements).innerJoin(experiments, eq(experiments.id, measurements.experimentId))
    .where(and(eq(measurements.campaign, c.name), eq(measurements.commit, commit), eq(measurements.hardwareClass, origin.hardwareClass), inArray(measurements.kind, kinds))).all()
  const runs = runsOf(origin.commit, ['explore', 'rebase', 'verify'])
  const parent = runsOf(origin.parentCommit, ['baseline', 'verify']).map(r => r.valBpb)
  const sigma = noiseFloorOf(tx, c.name, origin.hardwareClass, c.spec.noise.priorSigma).sigma
  // Whose runs are no independent evidence: every author along the chain (a superset of the
  // carried claim's author, units/judge.ts carriedClaimOf, so never more lenient).
  const authors = new Set<string>()
  for (let e: Experiment | undefined = origin, i = 0; e && i <= MAX_HOPS; e = originOf(tx, e), i++) authors.add(e.contributorId)
  const seq = sequentialSettingsOf(c.spec.noise.policy)
  return carriedFrom(runs, parent, sigma, authors, further, seq.carryWeight, seq.wildSigmas)
}

/** Carried candidates are followed back this far at most (a chain of merges onto newer bests). */
const MAX_HOPS = 20

/** The experiment a carried candidate came from: its rebase unit's target. */
function originOf(tx: Writer, exp: Experiment): Experiment | undefined {
  if (exp.kind !== 'rebase') return undefined
  const target = tx.select({ target: workUnits.targetExperiment }).from(workUnits).where(eq(workUnits.id, exp.unitId)).get()?.target
  return target ? tx.select().from(experiments).where(eq(experiments.id, target)).get() : undefined
}

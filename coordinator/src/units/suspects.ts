import { and, eq, gt, inArray, isNull, or, sql } from 'drizzle-orm'
import { MEASURING_KINDS } from '@autoresearch-grid/shared'
import { contributors, experiments, measurements } from '../db/schema.ts'
import type { Writer } from '../db/open.ts'
import { prepared } from '../db/prepared.ts'
import { biasedReporters, overclaimers } from '../ratchet/index.ts'
import { noiseFloorOf } from '../measurements/noise-floor.ts'

/**
 * Contributors whose candidates nobody should spend runs verifying until the maintainer looks
 * (issue 15; the rule the simulation always played, now in production and per contributor, not
 * per worker: a second worker or token of the same person is the same suspect). A contributor is a
 * suspect, since the maintainer last cleared it (admin.clearSuspect), after SUSPECT_AFTER claims
 * above the cap that other contributors did not reproduce, or after CONTRADICTED_AFTER claims
 * below it that other contributors' runs contradicted (decide.ts, `claim-contradicted`) when those
 * are at least half of its candidates judged on verifications: a forger under the cap otherwise
 * kept a third of the honest workers busy, and each forged candidate was one more chance for honest
 * noise to carry it. Or, whatever its claims, when the runs it was handed — baselines and
 * verifications — sit systematically apart from other contributors' runs of the same commits
 * (ratchet/bias.ts): a lowball reporter's every claim earned verification, and each was one more
 * chance for honest noise. Or when its claims sit 3σ or more below what others measured of the
 * same commits, on average over three verified candidates (`overclaimers`, the forger below the cap). Not a ban: its workers
 * keep exploring, and its candidates wait for the maintainer. But its runs of other people's work
 * are no evidence (units/judge.ts), so it is handed no baselines or verifications (scheduler/next-unit.ts,
 * units/verifier-draw.ts).
 */
export const SUSPECT_AFTER = 2
export const CONTRADICTED_AFTER = 3

const q = prepared(db => ({
  suspects: db.select({ c: experiments.contributorId, reason: experiments.reason, n: sql<number>`count(*)` }).from(experiments)
    .leftJoin(contributors, eq(contributors.id, experiments.contributorId))
    .where(and(eq(experiments.campaign, sql.placeholder('campaign')),
      inArray(experiments.reason, ['unreproduced-improvement', 'claim-contradicted', 'not-confirmed', 'not-reproduced']),
      or(isNull(contributors.suspectClearedAt), gt(experiments.createdAt, contributors.suspectClearedAt))))
    .groupBy(experiments.contributorId, experiments.reason).prepare(),
  // Baselines and verifications (runs nobody chose), and explorations' claims.
  runs: db.select({ contributorId: experiments.contributorId, hardwareClass: measurements.hardwareClass, commit: measurements.commit, valBpb: measurements.valBpb,
    kind: measurements.kind, since: experiments.createdAt, cleared: contributors.suspectClearedAt })
    .from(measurements).innerJoin(experiments, eq(experiments.id, measurements.experimentId)).leftJoin(contributors, eq(contributors.id, experiments.contributorId))
    .where(and(eq(measurements.campaign, sql.placeholder('campaign')), inArray(measurements.kind, [...MEASURING_KINDS, 'explore']))).prepare(),
  lastMeasurement: db.select({ id: sql<number>`max(${measurements.id})` }).from(measurements).prepare(),
}))

/**
 * The biased reporters of each campaign, per database (the same session key as the prepared
 * queries), kept until a measurement or a clearing changes them: every lease asks.
 */
const biasCache = prepared(() => new Map<string, { key: string; ids: string[] }>())

function unreliableReporters(tx: Writer, campaign: string, priorSigma: number): string[] {
  const cleared = tx.select({ n: sql<number>`count(*)`, at: sql<number>`max(${contributors.suspectClearedAt})` }).from(contributors).get()
  const key = `${q(tx).lastMeasurement.get()?.id ?? 0}:${cleared?.n ?? 0}:${cleared?.at ?? 0}:${priorSigma}`
  const cache = biasCache(tx)
  const hit = cache.get(campaign)
  if (hit?.key === key) return hit.ids
  const runs = q(tx).runs.all({ campaign }).map(r => ({ ...r, claim: r.kind === 'explore' }))
  // A contributor's own runs from before the maintainer cleared it stop counting against it.
  const counts = (r: (typeof runs)[number]) => r.cleared === null || r.since > r.cleared
  // The noise floor can come out at half the truth, or less, from the few runs it rests on: no one
  // is accused on a σ smaller than the campaign's prior.
  const sigmaOf = (cls: string) => Math.max(noiseFloorOf(tx, campaign, cls, priorSigma).sigma, priorSigma)
  const biased = new Set(biasedReporters(runs.filter(r => !r.claim && counts(r)), sigmaOf).map(b => b.contributorId))
  // Claims against the others' runs, a biased reporter's left out: its verifications would frame honest authors.
  const over = overclaimers(runs.filter(r => (r.claim ? counts(r) : !biased.has(r.contributorId))), sigmaOf).map(g => g.contributorId)
  const ids = [...biased, ...over]
  cache.set(campaign, { key, ids })
  return ids
}

export function suspectContributors(tx: Writer, campaign: string, priorSigma: number): string[] {
  const counts = new Map<string, Record<string, number>>()
  for (const r of q(tx).suspects.all({ campaign })) counts.set(r.c, { ...counts.get(r.c), [r.reason ?? '']: r.n })
  return [...counts].filter(([, n]) => {
    const contradicted = n['claim-contradicted'] ?? 0
    const judged = contradicted + (n['not-confirmed'] ?? 0) + (n['not-reproduced'] ?? 0)
    return (n['unreproduced-improvement'] ?? 0) >= SUSPECT_AFTER || (contradicted >= CONTRADICTED_AFTER && contradicted * 2 >= judged)
  }).map(([c]) => c).concat(unreliableReporters(tx, campaign, priorSigma)).filter((c, i, all) => all.indexOf(c) === i).sort()
}

import { and, eq, gt, inArray, isNotNull, isNull, or, sql } from 'drizzle-orm'
import { CANDIDATE_KINDS, isCandidate, MEASURING_KINDS } from '@autoresearch-grid/shared'
import { contributors, experiments, measurements } from '../db/schema.ts'
import type { Writer } from '../db/open.ts'
import { prepared } from '../db/prepared.ts'
import { biasedReporters, MIN_UNREPRODUCED, overclaimers, unreproducedClaimants } from '../ratchet/index.ts'
import { noiseFloorOf } from '../measurements/noise-floor.ts'

/**
 * Contributors whose candidates nobody should spend runs verifying until the maintainer looks
 * (issue 15; the rule the simulation always played, now in production and per contributor, not
 * per worker: a second worker or token of the same person is the same suspect). A contributor is a
 * suspect, since the maintainer last cleared it (admin.clearSuspect), when its claims above the cap
 * that other contributors did not reproduce come closer together than honest wild runs put them
 * (ratchet/unreproduced.ts: at least two, in a stretch of its decided claims with few others; two
 * anywhere among hundreds flagged honest contributors of the grid), or after CONTRADICTED_AFTER claims
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
export const SUSPECT_AFTER = MIN_UNREPRODUCED
export const CONTRADICTED_AFTER = 3

const q = prepared(db => ({
  suspects: db.select({ c: experiments.contributorId, reason: experiments.reason, n: sql<number>`count(*)` }).from(experiments)
    .leftJoin(contributors, eq(contributors.id, experiments.contributorId))
    .where(and(eq(experiments.campaign, sql.placeholder('campaign')),
      inArray(experiments.reason, ['unreproduced-improvement', 'claim-contradicted', 'not-confirmed', 'not-reproduced']),
      or(isNull(contributors.suspectClearedAt), gt(experiments.createdAt, contributors.suspectClearedAt))))
    .groupBy(experiments.contributorId, experiments.reason).prepare(),
  // Measurements added since the run log last looked (by id), with what the bias tests need of
  // their experiment; every kind, so the last row taken can be checked as noise-floor.ts does.
  runsSince: db.select({ id: measurements.id, campaign: measurements.campaign, experimentId: measurements.experimentId, contributorId: experiments.contributorId,
    hardwareClass: measurements.hardwareClass, commit: measurements.commit, valBpb: measurements.valBpb, kind: measurements.kind, since: experiments.createdAt })
    .from(measurements).innerJoin(experiments, eq(experiments.id, measurements.experimentId))
    .where(gt(measurements.id, sql.placeholder('id'))).orderBy(measurements.id).prepare(),
  row: db.select({ experimentId: measurements.experimentId, commit: measurements.commit }).from(measurements).where(eq(measurements.id, sql.placeholder('id'))).prepare(),
  // Every decided claim of the campaign in the order it was made (experiments_campaign), for the
  // unreproduced-claims test; read only when someone has SUSPECT_AFTER such rejections.
  decidedClaims: db.select({ c: experiments.contributorId, reason: experiments.reason, at: experiments.createdAt }).from(experiments)
    .where(and(eq(experiments.campaign, sql.placeholder('campaign')), inArray(experiments.kind, [...CANDIDATE_KINDS]),
      inArray(experiments.status, ['kept', 'awaiting-review', 'discarded', 'rejected'])))
    .orderBy(experiments.createdAt, sql`rowid`).prepare(),
  lastMeasurement: db.select({ id: sql<number>`max(${measurements.id})` }).from(measurements).prepare(),
  cleared: clearingsQuery(db).prepare(),
  clearedAt: db.select({ id: contributors.id, at: contributors.suspectClearedAt }).from(contributors).where(isNotNull(contributors.suspectClearedAt)).prepare(),
}))

/**
 * The maintainer's clearings so far (how many, the latest), read at every lease and report: through
 * `contributors_cleared`, so only the cleared contributors are visited. Counting every contributor
 * read the whole table (51 µs at 1,000 contributors, ~6 % of a report's loop: docs/PERFORMANCE.md,
 * "Eighteenth pass").
 */
export const clearingsQuery = (db: Writer) => db.select({ n: sql<number>`count(${contributors.suspectClearedAt})`, at: sql<number>`max(${contributors.suspectClearedAt})` })
  .from(contributors).where(isNotNull(contributors.suspectClearedAt))

/** Bias tests look at baselines and verifications (runs nobody chose), and explorations' claims. */
const COMPARED_KINDS: ReadonlySet<string> = new Set([...MEASURING_KINDS, 'explore'])

interface LoggedRun {
  id: number
  contributorId: string
  hardwareClass: string
  commit: string
  valBpb: number
  kind: string
  /** A claim: the author's run of its own candidate (explore). */
  claim: boolean
  /** When its experiment was created: runs from before the contributor was cleared stop counting. */
  since: number
}

/**
 * The compared runs of each campaign, kept in memory per database and brought up to date with the
 * measurements added since (reading every run of the campaign again after each report was 40 % of
 * a report's CPU: docs/PERFORMANCE.md, "Issue 17, part 3"). Measurements are only appended and
 * their experiment's author and creation time never change; as in noise-floor.ts, each update
 * first checks that the last row taken is still there, unchanged, and starts afresh if not (a
 * transaction rolled back after its rows were taken).
 *
 * Runs are kept in the order SQLite's `measurements_commit` index (campaign, commit, class) gave
 * them when they were read with one query per call: by commit, class, then id. The bias tests'
 * sums follow that order, so their floating-point results stay the same to the last bit.
 */
interface RunLog {
  last: { id: number; experimentId: string; commit: string } | null
  byCampaign: Map<string, LoggedRun[]>
}
const runLog = prepared((): { log: RunLog } => ({ log: { last: null, byCampaign: new Map() } }))

const before = (a: LoggedRun, b: LoggedRun) =>
  a.commit !== b.commit ? a.commit < b.commit : a.hardwareClass !== b.hardwareClass ? a.hardwareClass < b.hardwareClass : a.id < b.id

function campaignRuns(tx: Writer, campaign: string): LoggedRun[] {
  const state = runLog(tx)
  const seen = state.log.last
  if (seen) {
    const row = q(tx).row.get({ id: seen.id })
    if (row?.experimentId !== seen.experimentId || row.commit !== seen.commit) state.log = { last: null, byCampaign: new Map() }
  }
  const log = state.log
  for (const m of q(tx).runsSince.all({ id: log.last?.id ?? 0 })) {
    log.last = { id: m.id, experimentId: m.experimentId, commit: m.commit }
    if (!COMPARED_KINDS.has(m.kind)) continue
    let runs = log.byCampaign.get(m.campaign)
    if (!runs) log.byCampaign.set(m.campaign, (runs = []))
    const run: LoggedRun = { id: m.id, contributorId: m.contributorId, hardwareClass: m.hardwareClass, commit: m.commit, valBpb: m.valBpb, kind: m.kind, claim: m.kind === 'explore', since: m.since }
    // Rows arrive by id: the new one goes after every run of its commit and class.
    let lo = 0
    let hi = runs.length
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (before(run, runs[mid])) hi = mid
      else lo = mid + 1
    }
    runs.splice(lo, 0, run)
  }
  return log.byCampaign.get(campaign) ?? []
}

/**
 * The biased reporters of each campaign, per database (the same session key as the prepared
 * queries), and the last measurement they were found at: every lease asks, and every report.
 */
interface BiasAnswer {
  /** Clearings and the prior: a change of either reads everything again. */
  settings: string
  last: { id: number; experimentId: string; commit: string } | null
  ids: string[]
}
const biasCache = prepared(() => new Map<string, BiasAnswer>())

function unreliableReporters(tx: Writer, campaign: string, priorSigma: number): string[] {
  const cleared = q(tx).cleared.get()
  const settings = `${cleared?.n ?? 0}:${cleared?.at ?? 0}:${priorSigma}`
  const lastId = q(tx).lastMeasurement.get()?.id ?? 0
  const cache = biasCache(tx)
  const hit = cache.get(campaign)
  if (hit?.settings === settings && stillAnswers(tx, campaign, hit, lastId)) return hit.ids
  const clearedAt = new Map(q(tx).clearedAt.all().map(c => [c.id, c.at]))
  const runs = campaignRuns(tx, campaign)
  // A contributor's own runs from before the maintainer cleared it stop counting against it.
  const counts = (r: LoggedRun) => {
    if (clearedAt.size === 0) return true
    const cleared = clearedAt.get(r.contributorId) ?? null
    return cleared === null || r.since > cleared
  }
  // The noise floor can come out at half the truth, or less, from the few runs it rests on: no one
  // is accused on a σ smaller than the campaign's prior. Once per class: nothing changes it
  // within this call, and the bias tests ask for every commit.
  const sigmas = new Map<string, number>()
  const sigmaOf = (cls: string) => {
    let sigma = sigmas.get(cls)
    if (sigma === undefined) sigmas.set(cls, (sigma = Math.max(noiseFloorOf(tx, campaign, cls, priorSigma).sigma, priorSigma)))
    return sigma
  }
  const biased = new Set(biasedReporters(runs.filter(r => !r.claim && counts(r)), sigmaOf).map(b => b.contributorId))
  // Claims against the others' runs, a biased reporter's left out: its verifications would frame honest authors.
  const over = overclaimers(withOthersRuns(runs.filter(r => (r.claim ? counts(r) : !biased.has(r.contributorId)))), sigmaOf).map(g => g.contributorId)
  const ids = [...biased, ...over]
  cache.set(campaign, { settings, last: lastId ? lastRow(tx, lastId) : null, ids })
  return ids
}

function lastRow(tx: Writer, id: number): BiasAnswer['last'] {
  const row = q(tx).row.get({ id })
  return row ? { id, experimentId: row.experimentId, commit: row.commit } : null
}

/**
 * Whether an answer found at an earlier measurement still holds: the measurements added since are
 * all of other campaigns, or claims (candidates' own runs) of commits nobody else has run on that
 * class. Such a claim changes neither test's input (biasedReporters reads runs other than claims;
 * overclaimers only commits with such a run, withOthersRuns) nor σ (the noise floor leaves claims
 * out), and it is what most reports add: an exploration's run of its new commit. Re-running both
 * tests over every run of the campaign on each of them made a report O(runs so far).
 * As in campaignRuns, the row the answer was found at must still be there, unchanged.
 */
function stillAnswers(tx: Writer, campaign: string, hit: BiasAnswer, lastId: number): boolean {
  if ((hit.last?.id ?? 0) === lastId) return true
  if (hit.last) {
    const row = q(tx).row.get({ id: hit.last.id })
    if (row?.experimentId !== hit.last.experimentId || row.commit !== hit.last.commit) return false
  }
  const runs = campaignRuns(tx, campaign)
  for (const m of q(tx).runsSince.all({ id: hit.last?.id ?? 0 })) {
    if (m.campaign !== campaign) continue
    if (!isCandidate(m.kind) || hasRunOtherThanClaim(runs, m.commit, m.hardwareClass)) return false
  }
  hit.last = lastRow(tx, lastId)
  return true
}

/** Whether `runs` (sorted by commit and class, campaignRuns) hold a run of this commit and class that is no claim. */
function hasRunOtherThanClaim(runs: LoggedRun[], commit: string, cls: string): boolean {
  let lo = 0
  let hi = runs.length
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    const r = runs[mid]
    if (r.commit < commit || (r.commit === commit && r.hardwareClass < cls)) lo = mid + 1
    else hi = mid
  }
  for (let i = lo; i < runs.length && runs[i].commit === commit && runs[i].hardwareClass === cls; i++) if (!runs[i].claim) return true
  return false
}

/**
 * The runs of the commits (and classes) that have a run other than a claim: overclaimers skips
 * every other commit, and most are such (each exploration's own commit, run by its author once).
 * Grouping them all cost an array and a key per run on every report; this keeps only what the test
 * reads, in the same order, so its sums are the same. `runs` come sorted by commit and class
 * (campaignRuns), so a commit's runs are side by side.
 */
function withOthersRuns(runs: LoggedRun[]): LoggedRun[] {
  const out: LoggedRun[] = []
  for (let start = 0; start < runs.length;) {
    let end = start + 1
    while (end < runs.length && runs[end].commit === runs[start].commit && runs[end].hardwareClass === runs[start].hardwareClass) end++
    for (let i = start; i < end; i++) {
      if (runs[i].claim) continue
      for (let j = start; j < end; j++) out.push(runs[j])
      break
    }
    start = end
  }
  return out
}

/**
 * The contributors whose unreproduced claims above the cap are too close together (ratchet/unreproduced.ts),
 * among `candidates` (those with SUSPECT_AFTER or more since they were cleared). Every contributor's
 * decided claims set the bar; a contributor's own from before its clearing stop counting.
 */
function unreproducedClaimantsOf(tx: Writer, campaign: string, candidates: ReadonlySet<string>): string[] {
  if (!candidates.size) return []
  const rows = q(tx).decidedClaims.all({ campaign })
  const clearedAt = new Map(q(tx).clearedAt.all().map(c => [c.id, c.at]))
  const claims = rows.filter(r => candidates.has(r.c) && r.at > (clearedAt.get(r.c) ?? -Infinity))
    .map(r => ({ contributorId: r.c, unreproduced: r.reason === 'unreproduced-improvement' }))
  return unreproducedClaimants(claims, rows.length)
}

export function suspectContributors(tx: Writer, campaign: string, priorSigma: number): string[] {
  const counts = new Map<string, Record<string, number>>()
  for (const r of q(tx).suspects.all({ campaign })) counts.set(r.c, { ...counts.get(r.c), [r.reason ?? '']: r.n })
  const unreproduced = new Set([...counts].filter(([, n]) => (n['unreproduced-improvement'] ?? 0) >= SUSPECT_AFTER).map(([c]) => c))
  return [...counts].filter(([, n]) => {
    const contradicted = n['claim-contradicted'] ?? 0
    const judged = contradicted + (n['not-confirmed'] ?? 0) + (n['not-reproduced'] ?? 0)
    return contradicted >= CONTRADICTED_AFTER && contradicted * 2 >= judged
  }).map(([c]) => c).concat(unreproducedClaimantsOf(tx, campaign, unreproduced), unreliableReporters(tx, campaign, priorSigma))
    .filter((c, i, all) => all.indexOf(c) === i).sort()
}

import type { UnitKind } from '@autoresearch-grid/shared'
/**
 * What an idle worker should do next (DESIGN §8), as a pure choice over a snapshot of the queue.
 * In order of value:
 *   1. a baseline of the current best on the worker's class, while the class has fewer than
 *      `baselineRuns` of them (nothing measured on a class can be judged without one, and every
 *      candidate compared against this best gains from a tighter parent mean); then a queued run
 *      of a parent the ratchet asked for on demand (`parentsOnDemand`);
 *   2. a verification the worker is eligible for: same class as the candidate's runs, and not a
 *      worker of the candidate's contributor (one contributor may run many workers, so a second
 *      worker on the same token is no independent witness); a worker that has not measured that
 *      candidate yet is preferred.
 *      Candidates of suspect workers and contributors are not verified at all: one that forges
 *      huge claims would otherwise keep every honest worker busy disproving them. Nor, while the
 *      worker may explore, those of a contributor whose candidates its own contributor verified
 *      far more than that one verified back (`outOfCredit`, `verifyCredit`). A verification
 *      reserved for another worker (drawn at random by the coordinator, so the author cannot
 *      predict who verifies) is closed to this one;
 *   3. a rebase (re-implementing a promising change on a newer best) whose run by this worker
 *      someone could verify: its result has two authors, the worker's contributor and the
 *      origin's (ratchet/decide.ts, carried claims), and neither is a witness; in a class with no
 *      third contributor only the origin's own workers may take it (else it would wait forever);
 *   4. exploring the highest-priority open hypothesis not yet tried on the best and not being
 *      explored on it by someone else right now;
 *   5. free exploration, where the agent picks the idea;
 *   none of 4–5 where the worker's class cannot verify what it would explore (`explorationAllowed`).
 * Within a step the oldest queued unit goes first. The caller leases or creates what this returns,
 * in the same transaction as the snapshot, so two workers never get the same unit.
 */

export type { UnitKind }

export interface QueuedUnit {
  id: string
  kind: UnitKind
  /** baseline: the commit measured; verify: the candidate re-run; explore/rebase: the parent trained from. */
  commit: string
  /** Only workers of this class may take it; null: any class. */
  hardwareClass: string | null
  /** verify: the worker whose candidate it is. */
  candidateWorkerId?: string | null
  /** verify: the contributor whose candidate it is; none of its workers may take it. */
  candidateContributorId?: string | null
  /** verify: workers that already ran the candidate. */
  measuredBy?: readonly string[]
  /**
   * verify: contributors none of whose workers may take it (the ratchet's latest decision). When
   * given, it replaces the rule "not the candidate's contributor" (which self-verification lifts).
   * A parent run on demand (a baseline named in `parentsOnDemand`): the candidate's authors.
   * rebase: contributors whose rebase of the same idea failed (units/rebase-retry.ts).
   */
  excludedContributorIds?: readonly string[] | null
  /** verify: the only worker that may take it for now; null or absent: any eligible worker. */
  reservedFor?: string | null
  /** rebase: false when nobody could verify this worker's run of it (the caller knows who is active); absent: it could. */
  verifiable?: boolean
  hypothesisId?: string | null
  /** The worker holding the lease, or null while it waits in the queue. */
  leasedTo: string | null
  queuedAt: number
}

export interface HypothesisState {
  id: string
  /** Higher first. */
  priority: number
  status: string
  /** Parent commits the hypothesis was already explored on. */
  triedOn: readonly string[]
  createdAt: number
}

export interface SchedulerSettings {
  /** Baseline runs of each best wanted per hardware class. */
  baselineRuns: number
  /** Mirror of the ratchet's setting: may the candidate's contributor (any of its workers) verify it? */
  allowSelfVerification: boolean
}

export const DEFAULT_SCHEDULER_SETTINGS: SchedulerSettings = { baselineRuns: 4, allowSelfVerification: false }

/** Hypotheses in these states may still be explored (on parents they were not tried on). */
export const EXPLORABLE_STATUSES: readonly string[] = ['open', 'in-progress']

export interface SchedulerInput {
  worker: { id: string; contributorId: string; hardwareClass: string }
  /** The campaign's current best commit. */
  best: string
  /** Measurements of the best per hardware class (absent: none). */
  baselines: Readonly<Record<string, number>>
  /** Queued and leased units of the campaign (done and cancelled ones left out). */
  units: readonly QueuedUnit[]
  hypotheses: readonly HypothesisState[]
  /**
   * Workers whose claims others failed to reproduce (the coordinator's policy decides who, e.g.
   * two `unreproduced-improvement` rejections); their candidates wait for the maintainer.
   */
  suspectWorkerIds?: readonly string[]
  /** The same, per contributor: every worker of a suspect contributor. */
  suspectContributorIds?: readonly string[]
  /** False when nobody could verify what this worker's class explores: it is offered no exploration. */
  explorationAllowed?: boolean
  settings?: SchedulerSettings
  /**
   * Commits whose queued baseline units are parent runs on demand (the sequential policy's
   * `parentOnDemand`): leased after the best's own baselines, whether or not the commit is still
   * the best. Absent: only baselines of the best are leased.
   */
  parentsOnDemand?: readonly string[]
  /**
   * Who measured the best on the worker's class (baselines and verifications, run or running), by
   * contributor, and the other contributors at work on the campaign on that class (holding a unit
   * of it), suspects left out. A contributor takes a baseline of the best only while it has no
   * more of them than each of those (`baselineTurn`). Absent: any contributor may take any.
   */
  baselineShares?: { byContributor: Readonly<Record<string, number>>; others: readonly string[] }
  /**
   * Contributors whose candidates this worker's contributor has verified beyond its credit with
   * them (`verifyCredit`): while the worker may explore, their verifications are left to others.
   * Absent: none.
   */
  outOfCredit?: readonly string[]
}

/**
 * Verification runs one contributor measures for another's candidates before it asks for some
 * back, and the runs each one it gets back earns. Verification comes before exploration, so without
 * a bound a contributor that makes candidates faster than it verifies (a fast researcher, or a
 * hostile one whose forged claims clear the screen but never the suspect rules) kept another's
 * workers verifying and never exploring (test/hostile/verify-credit.test.ts). Between contributors
 * that make candidates at a like rate the credit never runs out.
 */
export const VERIFY_CREDIT = 8
export const CREDIT_PER_RUN_RECEIVED = 2

/** What a contributor may still verify for another: VERIFY_CREDIT + CREDIT_PER_RUN_RECEIVED · received − given. */
export function verifyCredit(given: number, received: number): number {
  return VERIFY_CREDIT + CREDIT_PER_RUN_RECEIVED * received - given
}

export type NextUnit =
  | { action: 'lease'; unitId: string; kind: UnitKind; reason: string }
  | { action: 'create'; kind: 'baseline'; commit: string; hardwareClass: string; reason: string }
  | { action: 'create'; kind: 'explore'; parentCommit: string; hypothesisId: string | null; reason: string }
  | { action: 'none'; kind?: undefined; reason: string }

const oldestFirst = (a: QueuedUnit, b: QueuedUnit): number => a.queuedAt - b.queuedAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)

function fitsClass(unit: QueuedUnit, cls: string): boolean {
  return unit.hardwareClass === null || unit.hardwareClass === cls
}

/**
 * Whether this worker's contributor may take a baseline of the best now. Their mean is what every
 * candidate on the best is judged against, and independence is by contributor: handed to whoever
 * asked first, a contributor with idle workers (names cost nothing) took all of a new best's
 * baselines and set that mean (test/hostile/baseline-hoarding.test.ts). So they go round by
 * contributor among those at work on the campaign and class; with self-verification allowed,
 * independence is not asked for, and any may take them.
 */
function baselineTurn(input: SchedulerInput, settings: SchedulerSettings): boolean {
  const shares = input.baselineShares
  if (!shares || settings.allowSelfVerification) return true
  const mine = shares.byContributor[input.worker.contributorId] ?? 0
  return shares.others.every(c => (shares.byContributor[c] ?? 0) >= mine)
}

function baselineStep(input: SchedulerInput, settings: SchedulerSettings): NextUnit | undefined {
  const cls = input.worker.hardwareClass
  const ofBest = input.units.filter(u => u.kind === 'baseline' && u.commit === input.best && u.hardwareClass === cls)
  const turn = baselineTurn(input, settings)
  const queued = turn ? ofBest.filter(u => u.leasedTo === null).sort(oldestFirst)[0] : undefined
  if (queued) return { action: 'lease', unitId: queued.id, kind: 'baseline', reason: `baseline of the best on ${cls}` }
  const wanted = new Set(input.parentsOnDemand ?? [])
  // Not by the candidate's own contributors (`excludedContributorIds`): a parent measured by its
  // author is the one number of the test the author would choose.
  const demand = input.units.filter(u => u.kind === 'baseline' && u.leasedTo === null && u.hardwareClass === cls && wanted.has(u.commit) && (turn || u.commit !== input.best) &&
    !(u.excludedContributorIds ?? []).includes(input.worker.contributorId)).sort(oldestFirst)[0]
  if (demand) return { action: 'lease', unitId: demand.id, kind: 'baseline', reason: `a run of ${demand.commit}, the parent of a candidate under test, on ${cls}` }
  const measured = input.baselines[cls] ?? 0
  const running = ofBest.length
  if (turn && measured + running < settings.baselineRuns)
    return {
      action: 'create',
      kind: 'baseline',
      commit: input.best,
      hardwareClass: cls,
      reason: `${cls} has ${measured} baseline run(s) of the best (${running} running), ${settings.baselineRuns} wanted`,
    }
  return undefined
}

/** Whether a worker (by its id or its contributor's) is a suspect in `input`. */
function suspectOf(input: SchedulerInput): (workerId: string | null | undefined, contributorId: string | null | undefined) => boolean {
  const workers = new Set(input.suspectWorkerIds ?? [])
  const contributors = new Set(input.suspectContributorIds ?? [])
  return (workerId, contributorId) => workers.has(workerId ?? '') || contributors.has(contributorId ?? '')
}

function verifyStep(input: SchedulerInput, settings: SchedulerSettings): NextUnit | undefined {
  const { id, contributorId, hardwareClass: cls } = input.worker
  const suspect = suspectOf(input)
  // A worker that may not explore verifies whoever's candidates wait, rather than stand idle.
  const owed = new Set(input.explorationAllowed === false ? [] : input.outOfCredit ?? [])
  // The list names the author's contributor whenever its workers are excluded (the candidate's own worker with them).
  const mayRun = (u: QueuedUnit) => u.excludedContributorIds
    ? !u.excludedContributorIds.includes(contributorId)
    : settings.allowSelfVerification || (u.candidateWorkerId !== id && u.candidateContributorId !== contributorId)
  const eligible = input.units.filter(
    u =>
      u.kind === 'verify' &&
      u.leasedTo === null &&
      fitsClass(u, cls) &&
      (u.reservedFor ?? id) === id &&
      mayRun(u) &&
      !suspect(u.candidateWorkerId, u.candidateContributorId) &&
      !owed.has(u.candidateContributorId ?? ''),
  )
  const fresh = (u: QueuedUnit) => !(u.measuredBy ?? []).includes(id)
  const pick = eligible.filter(fresh).sort(oldestFirst)[0] ?? eligible.sort(oldestFirst)[0]
  return pick && { action: 'lease', unitId: pick.id, kind: 'verify', reason: `verification of ${pick.commit}` }
}

function rebaseStep(input: SchedulerInput): NextUnit | undefined {
  // Not by a contributor whose rebase of the same idea failed on its own word (units/rebase-retry.ts).
  const pick = input.units.filter(u => u.kind === 'rebase' && u.leasedTo === null && u.verifiable !== false && fitsClass(u, input.worker.hardwareClass) &&
    !(u.excludedContributorIds ?? []).includes(input.worker.contributorId)).sort(oldestFirst)[0]
  return pick && { action: 'lease', unitId: pick.id, kind: 'rebase', reason: `rebase onto the best` }
}

function exploreStep(input: SchedulerInput): NextUnit {
  const explores = input.units.filter(u => u.kind === 'explore' && u.commit === input.best && fitsClass(u, input.worker.hardwareClass))
  const taken = new Set(explores.filter(u => u.leasedTo !== null).map(u => u.hypothesisId ?? null))
  const hypothesis = input.hypotheses
    .filter(h => EXPLORABLE_STATUSES.includes(h.status) && !h.triedOn.includes(input.best) && !taken.has(h.id))
    .sort((a, b) => b.priority - a.priority || a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))[0]
  const hypothesisId = hypothesis?.id ?? null
  const queued = explores.filter(u => u.leasedTo === null && (u.hypothesisId ?? null) === hypothesisId).sort(oldestFirst)[0]
  const what = hypothesis ? `hypothesis ${hypothesis.id} (priority ${hypothesis.priority})` : 'free exploration'
  if (queued) return { action: 'lease', unitId: queued.id, kind: 'explore', reason: what }
  return { action: 'create', kind: 'explore', parentCommit: input.best, hypothesisId, reason: what }
}

export function nextUnit(input: SchedulerInput): NextUnit {
  const settings = input.settings ?? DEFAULT_SCHEDULER_SETTINGS
  if (!(Number.isInteger(settings.baselineRuns) && settings.baselineRuns >= 1))
    throw new RangeError(`baselineRuns must be a whole number ≥ 1, got ${settings.baselineRuns}`)
  const nothing: NextUnit = { action: 'none', reason: `nobody could verify what ${input.worker.hardwareClass} explores (too few contributors on the class)` }
  // A suspect's baselines and verifications would count for nothing (units/judge.ts): it explores,
  // and its candidates wait for the maintainer.
  const measuring = suspectOf(input)(input.worker.id, input.worker.contributorId) ? undefined : baselineStep(input, settings) ?? verifyStep(input, settings)
  return measuring ?? (input.explorationAllowed === false ? nothing : rebaseStep(input) ?? exploreStep(input))
}

import { and, eq, inArray, sql } from 'drizzle-orm'
import { type Metrics, type ReportStatus, CANDIDATE_KINDS, FAILED_STATUSES, MEASURING_KINDS } from '@autoresearch-grid/shared'
import type { Writer } from '../db/open.ts'
import { logEvent } from '../events/log.ts'
import { prepared } from '../db/prepared.ts'
import type { Campaign } from '../campaigns/campaigns.ts'
import { experiments, hypotheses, measurements, workUnits } from '../db/schema.ts'
import { budgetProblem, decide, DEFAULT_RATCHET_SETTINGS, isSequential, mean, poolsClasses, type ClassRuns, type Decision, type ParentRun, type RatchetSettings } from '../ratchet/index.ts'
import { noiseFloorOf } from '../measurements/noise-floor.ts'
import { classStanding } from '../classes/approval.ts'
import { cancelLease, cancelVerifications, createUnit, excludeVerifiers, leasedVerifications } from './lifecycle.ts'
import { carriedEvidenceOf, realRateOfCampaign } from './sequential-inputs.ts'
import { suspectContributors } from './suspects.ts'

type Experiment = typeof experiments.$inferSelect

const p = sql.placeholder
/** Every report is judged: prepared once (db/prepared.ts). */
const q = prepared(db => ({
  // A parent's runs that are evidence: baselines and verifications, never claims (explore and rebase
  // runs), exactly as the noise floor counts them. A claim carried into the parent's samples (a
  // merged candidate's capped author run) set the parent mean too low, and nothing merged after it.
  parentRuns: db.select({ valBpb: measurements.valBpb, contributorId: experiments.contributorId })
    .from(measurements).innerJoin(experiments, eq(experiments.id, measurements.experimentId))
    .where(and(eq(measurements.campaign, p('campaign')), eq(measurements.commit, p('commit')), eq(measurements.hardwareClass, p('cls')),
      inArray(measurements.kind, [...MEASURING_KINDS]))).prepare(),
  // The author's own runs of a commit (an origin's claim, for a candidate carried onto a newer best).
  claimRuns: db.select({ valBpb: measurements.valBpb }).from(measurements)
    .where(and(eq(measurements.campaign, p('campaign')), eq(measurements.commit, p('commit')), eq(measurements.hardwareClass, p('cls')),
      eq(measurements.workerId, p('worker')), inArray(measurements.kind, [...CANDIDATE_KINDS]))).prepare(),
  unitOf: db.select({ kind: workUnits.kind, target: workUnits.targetExperiment }).from(workUnits).where(eq(workUnits.id, p('id'))).prepare(),
  experiment: db.select().from(experiments).where(eq(experiments.id, p('id'))).prepare(),
  // Verification runs of a candidate that produced no measurement: crashed, refused by the worker's
  // trusted evaluator, or not sane.
  failedVerifications: db.select({ workerId: experiments.workerId, contributorId: experiments.contributorId }).from(workUnits)
    .innerJoin(experiments, eq(experiments.unitId, workUnits.id))
    .where(and(eq(workUnits.targetExperiment, p('experiment')), eq(workUnits.kind, 'verify'), inArray(experiments.status, [...FAILED_STATUSES]))).prepare(),
  // Independence is by contributor: each run's contributor is its experiment's (one indexed join).
  runs: db.select({ valBpb: measurements.valBpb, workerId: measurements.workerId, contributorId: experiments.contributorId, trainingSeconds: measurements.trainingSeconds })
    .from(measurements).innerJoin(experiments, eq(experiments.id, measurements.experimentId))
    .where(and(eq(measurements.campaign, p('campaign')), eq(measurements.commit, p('commit')), eq(measurements.hardwareClass, p('cls')))).prepare(),
  // The classes a commit was measured on (the pooled policy reads each approved one's runs).
  classesOf: db.select({ cls: measurements.hardwareClass }).from(measurements)
    .where(and(eq(measurements.campaign, p('campaign')), eq(measurements.commit, p('commit')))).groupBy(measurements.hardwareClass).prepare(),
  decided: db.update(experiments).set({ status: sql`${p('status')}`, decision: sql`${p('decision')}`, reason: sql`${p('reason')}` }).where(eq(experiments.id, p('id'))).prepare(),
  hypothesis: db.update(hypotheses).set({ status: sql`${p('status')}` }).where(eq(hypotheses.id, p('id'))).prepare(),
  outstanding: db.select({ n: sql<number>`count(*)` }).from(workUnits)
    .where(and(eq(workUnits.targetExperiment, p('experiment')), eq(workUnits.kind, 'verify'), inArray(workUnits.state, ['queued', 'leased']))).prepare(),
}))

/**
 * The ratchet's settings for a campaign: its noise policy plus its budget, and issue 15's two
 * distinct verifying contributors. `allowSelfVerification` may be overridden for one class.
 */
export function ratchetSettings(c: Campaign): RatchetSettings {
  return { ...c.spec.noise, budgetSeconds: c.spec.budgetSeconds, minVerifierContributors: DEFAULT_RATCHET_SETTINGS.minVerifierContributors }
}

/**
 * The val_bpb a trained model of text can score on held-out text. 8 bits per byte is a model that
 * knows nothing (uniform over bytes); the best language models score about 0.5-0.7 on web text, so
 * 0.05 would be ten times better than any. A run outside this range is broken or forged, and as a
 * baseline one such number moved the parent's mean enough to stall a campaign
 * (test/hostile/measurements.test.ts).
 */
export const PLAUSIBLE_BPB = { min: 0.05, max: 64 } as const

/**
 * Whether a run can count as a measurement at all. Candidates get the full rule from `decide`;
 * baselines and verifications only need to be sane, or they would poison the parent's mean.
 */
export function runProblem(c: Campaign, status: ReportStatus, m: Metrics | null, rejection?: string): { status: Experiment['status']; decision: string; reason?: string } | null {
  if (status === 'rejected-unsafe') return { status: 'rejected-unsafe', decision: 'rejected: the worker found the code unsafe to run' }
  // The worker's trusted evaluator refused the run (non-causal model, no checkpoint, over budget, …).
  if (status === 'rejected-measurement')
    return { status: 'rejected', reason: 'rejected-measurement', decision: `rejected by the trusted evaluator: ${(rejection ?? '').trim() || 'no reason given'}`.slice(0, 2100) }
  if (status === 'crash' || !m) return { status: 'crash', decision: 'crashed: no metrics' }
  if (!Number.isFinite(m.val_bpb) || m.val_bpb <= 0) return { status: 'rejected', decision: `rejected: val_bpb ${m.val_bpb} is not a positive finite number` }
  if (m.val_bpb < PLAUSIBLE_BPB.min || m.val_bpb > PLAUSIBLE_BPB.max)
    return { status: 'rejected', decision: `rejected: val_bpb ${m.val_bpb} is not a plausible bits-per-byte (${PLAUSIBLE_BPB.min} to ${PLAUSIBLE_BPB.max}): the worker's evaluator or its report is broken` }
  const budget = budgetProblem(m.training_seconds, ratchetSettings(c))
  return budget ? { status: 'rejected', decision: `rejected: ${budget}` } : null
}

/** Reads what the ratchet needs for one candidate on its class and asks it. */
export function decideCandidate(tx: Writer, c: Campaign, exp: Experiment): Decision {
  // A suspect's runs of other people's work are no evidence (units/suspects.ts): a biased reporter's
  // baselines and verifications, kept, went on pulling means its way after it was flagged. The
  // author's own runs stay what they are, its claim.
  const suspects = new Set(suspectContributors(tx, c.name, c.spec.noise.priorSigma).filter(id => id !== exp.contributorId))
  const evidence = <T extends { contributorId: string }>(rows: T[]) => (suspects.size ? rows.filter(r => !suspects.has(r.contributorId)) : rows)
  const samples = evidence(q(tx).runs.all({ campaign: c.name, commit: exp.commit, cls: exp.hardwareClass }))
  const parentRuns: ParentRun[] = evidence(q(tx).parentRuns.all({ campaign: c.name, commit: exp.parentCommit, cls: exp.hardwareClass }))
  const sigma = noiseFloorOf(tx, c.name, exp.hardwareClass, c.spec.noise.priorSigma).sigma
  const standing = classStanding(tx, c, exp.hardwareClass)
  const sequential = isSequential(c.spec.noise.policy)
  // `pooled` and `parallel`: C's runs on every other approved class are evidence too, each against P's runs and σ
  // there (docs/RATCHET.md, issue 17); unapproved classes and suspects' runs stay out.
  const elsewhere: ClassRuns[] | undefined = !poolsClasses(c.spec.noise.policy) ? undefined : q(tx).classesOf.all({ campaign: c.name, commit: exp.commit })
    .map(r => r.cls).filter(cls => cls !== exp.hardwareClass && classStanding(tx, c, cls).approved)
    .map(cls => ({ hardwareClass: cls, samples: evidence(q(tx).runs.all({ campaign: c.name, commit: exp.commit, cls })),
      parentRuns: evidence(q(tx).parentRuns.all({ campaign: c.name, commit: exp.parentCommit, cls })), sigma: noiseFloorOf(tx, c.name, cls, c.spec.noise.priorSigma).sigma }))
  return decide({
    candidate: { authorId: exp.contributorId, samples, linesDelta: exp.linesDelta, carriedClaim: carriedClaimOf(tx, c, exp),
      failedRuns: evidence(q(tx).failedVerifications.all({ experiment: exp.id })), carried: sequential ? carriedEvidenceOf(tx, c, exp, suspects) : undefined,
      carriedWithout: sequential ? k => carriedEvidenceOf(tx, c, exp, new Set([...suspects, k])) : undefined },
    parentSamples: parentRuns.map(r => r.valBpb), parentRuns, sigma, parentIsBest: exp.parentCommit === c.bestCommit, classApproved: standing.approved,
    settings: { ...ratchetSettings(c), allowSelfVerification: standing.allowSelfVerification },
    realRate: sequential ? realRateOfCampaign(tx, c) : undefined, elsewhere,
  })
}

/**
 * The claim a candidate carried onto a newer best brings along (issue 15: forged claims were
 * laundered through the stale path, where the cap never judged them). A rebase experiment's unit
 * names its origin; the origin's claim is its author's runs against its own parent's evidence, or,
 * when it was carried itself, the claim it carried. Undefined for an original candidate.
 */
export function carriedClaimOf(tx: Writer, c: Campaign, exp: Experiment, hops = 0): { authorId: string; improvement: number } | undefined {
  if (exp.kind !== 'rebase' || hops > 20) return undefined
  const target = q(tx).unitOf.get({ id: exp.unitId })?.target
  const origin = target ? q(tx).experiment.get({ id: target }) : undefined
  if (!origin) return undefined
  const own = q(tx).claimRuns.all({ campaign: c.name, commit: origin.commit, cls: origin.hardwareClass, worker: origin.workerId }).map(r => r.valBpb)
  const parent = q(tx).parentRuns.all({ campaign: c.name, commit: origin.parentCommit, cls: origin.hardwareClass }).map(r => r.valBpb)
  const further = carriedClaimOf(tx, c, origin, hops + 1)
  const improvement = own.length && parent.length ? mean(parent) - mean(own) : 0
  return { authorId: origin.contributorId, improvement: Math.max(improvement, further?.improvement ?? -Infinity) }
}

export interface Applied {
  status: Experiment['status']
  /** The decision that accepted it, for the merge record. */
  merge?: Extract<Decision, { kind: 'merge' }>
  /** Its verifications cancelled while they ran: their workers are told once the transaction commits (announceCancelled). */
  cancelled: CancelledRun[]
}

/** A verification cancelled while a worker ran it, and why, for the worker (AssignmentEvent `cancel`). */
export interface CancelledRun {
  workerId: string
  unitId: string
  reason: string
}

/**
 * Why a decision makes a candidate's running verifications worthless (null: they run on).
 * Rejected or discarded, no verdict reads its runs again (only the noise floor would, one sample
 * of σ: not worth the rest of a GPU run). Stale under `fixed`, its evidence is dropped: the carried
 * candidate starts over. Under the sequential policies a stale candidate's runs feed the evidence
 * it carried (sequential-inputs.ts carriedEvidenceOf reads its origin's runs at each decision, late
 * ones too): they run on. So do a merged candidate's: a late one is also recorded on the branch
 * commit the merge made (units/report.ts), a parent run for the candidates on the new best.
 */
export function closingReason(kind: Decision['kind'], policy: RatchetSettings['policy']): string | null {
  if (kind === 'reject') return 'rejected'
  if (kind === 'discard') return 'discarded'
  if (kind === 'stale' && !isSequential(policy)) return 'carried onto a newer best without its runs (the fixed policy)'
  return null
}

/**
 * leased → cancelled for each verification of a candidate that workers are running (lifecycle.ts
 * cancelLease), with what each worker is to be told; logged with the candidate's campaign.
 */
export function cancelRunningVerifications(tx: Writer, campaign: string, exp: Experiment, why: string, now: number): CancelledRun[] {
  const running = leasedVerifications(tx, exp.id)
  for (const u of running) cancelLease(tx, u.id, now)
  if (running.length) logEvent(tx, campaign, 'verifications-cancelled', { experiment: exp.id, units: running.map(u => u.id), reason: why })
  return running.map(u => ({ workerId: u.workerId, unitId: u.id, reason: `its candidate ${exp.id} was ${why}: this run is not needed` }))
}

const STATUS: Record<Decision['kind'], Experiment['status']> = {
  reject: 'rejected', 'await-baseline': 'pending', hold: 'pending', discard: 'discarded', verify: 'pending', stale: 'stale', merge: 'merging',
}

/** Records a decision on a candidate: its status, verification units, and its hypothesis. */
export function applyDecision(tx: Writer, c: Campaign, exp: Experiment, d: Decision, now: number): Applied {
  const status = STATUS[d.kind]
  const reason = d.kind === 'discard' && d.claimContradicted ? 'claim-contradicted' : 'reason' in d ? d.reason : null
  q(tx).decided.run({ status, decision: d.message, reason, id: exp.id })
  if (d.kind === 'verify') ensureVerifications(tx, c, exp, d.needed, d.excludeContributorIds, now)
  else cancelVerifications(tx, exp.id, now)
  const closing = closingReason(d.kind, c.spec.noise.policy)
  const cancelled = closing ? cancelRunningVerifications(tx, c.name, exp, closing, now) : []
  if (exp.hypothesisId && status !== 'pending') {
    q(tx).hypothesis.run({ status: status === 'merging' ? 'merged' : 'tested', id: exp.hypothesisId })
  }
  if (status !== 'pending' || d.kind === 'verify') logEvent(tx, c.name, 'decision', { experiment: exp.id, kind: d.kind, message: d.message })
  return { status, merge: d.kind === 'merge' ? d : undefined, cancelled }
}

/**
 * Queues verification runs of a candidate until `needed` are outstanding, on its class. The
 * decision says whose workers must not run them (`excluded_contributors`: the author's, unless
 * self-verification is allowed, and while too few distinct contributors verified, those who did);
 * units already queued take the newest list. `excludedWorker` names the candidate's own worker.
 */
function ensureVerifications(tx: Writer, c: Campaign, exp: Experiment, needed: number, excluded: string[], now: number): void {
  const outstanding = q(tx).outstanding.get({ experiment: exp.id })!.n
  excludeVerifiers(tx, exp.id, excluded)
  for (let i = outstanding; i < needed; i++) {
    createUnit(tx, {
      kind: 'verify', campaign: c.name, hypothesisId: null, parentCommit: exp.parentCommit, targetCommit: exp.commit, targetExperiment: exp.id,
      // Under `pooled` and `parallel` any approved class may verify (units/verifier-draw.ts draws among them).
      hardwareClass: poolsClasses(c.spec.noise.policy) ? null : exp.hardwareClass, excludedWorker: excluded.includes(exp.contributorId) ? exp.workerId : null, excludedContributors: excluded,
    }, now)
  }
}

import { and, eq, inArray, sql } from 'drizzle-orm'
import type { Metrics, ReportStatus } from '@autoresearch-grid/shared'
import type { Writer } from '../events/log.ts'
import { logEvent } from '../events/log.ts'
import { prepared } from '../db/prepared.ts'
import type { Campaign } from '../campaigns/campaigns.ts'
import { experiments, hypotheses, measurements, workUnits } from '../db/schema.ts'
import { budgetProblem, decide, type Decision, type RatchetSettings } from '../ratchet/index.ts'
import { noiseFloorOf } from './noise-floor.ts'
import { newId } from '../context.ts'

type Experiment = typeof experiments.$inferSelect

const p = sql.placeholder
/** Every report is judged: prepared once (db/prepared.ts). */
const q = prepared(db => ({
  samples: db.select().from(measurements)
    .where(and(eq(measurements.campaign, p('campaign')), eq(measurements.commit, p('commit')), eq(measurements.hardwareClass, p('cls')))).prepare(),
  // Independence is by contributor: each run's contributor is its experiment's (one indexed join).
  runs: db.select({ valBpb: measurements.valBpb, workerId: measurements.workerId, contributorId: experiments.contributorId, trainingSeconds: measurements.trainingSeconds })
    .from(measurements).innerJoin(experiments, eq(experiments.id, measurements.experimentId))
    .where(and(eq(measurements.campaign, p('campaign')), eq(measurements.commit, p('commit')), eq(measurements.hardwareClass, p('cls')))).prepare(),
  decided: db.update(experiments).set({ status: sql`${p('status')}`, decision: sql`${p('decision')}` }).where(eq(experiments.id, p('id'))).prepare(),
  hypothesis: db.update(hypotheses).set({ status: sql`${p('status')}` }).where(eq(hypotheses.id, p('id'))).prepare(),
  outstanding: db.select({ n: sql<number>`count(*)` }).from(workUnits)
    .where(and(eq(workUnits.targetExperiment, p('experiment')), eq(workUnits.kind, 'verify'), inArray(workUnits.state, ['queued', 'leased']))).prepare(),
  cancel: db.update(workUnits).set({ state: 'cancelled', updatedAt: sql`${p('now')}` })
    .where(and(eq(workUnits.targetExperiment, p('experiment')), eq(workUnits.kind, 'verify'), eq(workUnits.state, 'queued'))).prepare(),
}))

/** The ratchet's settings for a campaign: its noise policy plus its budget. */
export function ratchetSettings(c: Campaign): RatchetSettings {
  return { ...c.spec.noise, budgetSeconds: c.spec.budgetSeconds }
}

/**
 * Whether a run can count as a measurement at all. Candidates get the full rule from `decide`;
 * baselines and verifications only need to be sane, or they would poison the parent's mean.
 */
export function runProblem(c: Campaign, status: ReportStatus, m: Metrics | null): { status: Experiment['status']; decision: string } | null {
  if (status === 'rejected-unsafe') return { status: 'rejected-unsafe', decision: 'rejected: the worker found the code unsafe to run' }
  if (status === 'crash' || !m) return { status: 'crash', decision: 'crashed: no metrics' }
  if (!Number.isFinite(m.val_bpb) || m.val_bpb <= 0) return { status: 'rejected', decision: `rejected: val_bpb ${m.val_bpb} is not a positive finite number` }
  const budget = budgetProblem(m.training_seconds, ratchetSettings(c))
  return budget ? { status: 'rejected', decision: `rejected: ${budget}` } : null
}

/** Reads what the ratchet needs for one candidate on its class and asks it. */
export function decideCandidate(tx: Writer, c: Campaign, exp: Experiment): Decision {
  const samples = q(tx).runs.all({ campaign: c.name, commit: exp.commit, cls: exp.hardwareClass })
  const parentSamples = q(tx).samples.all({ campaign: c.name, commit: exp.parentCommit, cls: exp.hardwareClass }).map(m => m.valBpb)
  const sigma = noiseFloorOf(tx, c.name, exp.hardwareClass, c.spec.noise.priorSigma).sigma
  return decide({
    candidate: { authorId: exp.contributorId, samples, linesDelta: exp.linesDelta },
    parentSamples, sigma, parentIsBest: exp.parentCommit === c.bestCommit, settings: ratchetSettings(c),
  })
}

export interface Applied {
  status: Experiment['status']
  /** The decision that accepted it, for the merge record. */
  merge?: Extract<Decision, { kind: 'merge' }>
}

const STATUS: Record<Decision['kind'], Experiment['status']> = {
  reject: 'rejected', 'await-baseline': 'pending', hold: 'pending', discard: 'discarded', verify: 'pending', stale: 'stale', merge: 'merging',
}

/** Records a decision on a candidate: its status, verification units, and its hypothesis. */
export function applyDecision(tx: Writer, c: Campaign, exp: Experiment, d: Decision, now: number): Applied {
  const status = STATUS[d.kind]
  q(tx).decided.run({ status, decision: d.message, id: exp.id })
  if (d.kind === 'verify') ensureVerifications(tx, c, exp, d.needed, now)
  else cancelVerifications(tx, exp.id, now)
  if (exp.hypothesisId && status !== 'pending') {
    q(tx).hypothesis.run({ status: status === 'merging' ? 'merged' : 'tested', id: exp.hypothesisId })
  }
  if (status !== 'pending' || d.kind === 'verify') logEvent(tx, c.name, 'decision', { experiment: exp.id, kind: d.kind, message: d.message })
  return { status, merge: d.kind === 'merge' ? d : undefined }
}

/**
 * Queues verification runs of a candidate until `needed` are outstanding: same class, and (unless
 * the campaign allows self-verification) workers of other contributors. `excludedWorker` names the
 * candidate's worker; the scheduler keeps every worker of that worker's contributor away.
 */
function ensureVerifications(tx: Writer, c: Campaign, exp: Experiment, needed: number, now: number): void {
  const outstanding = q(tx).outstanding.get({ experiment: exp.id })!.n
  for (let i = outstanding; i < needed; i++) {
    tx.insert(workUnits).values({
      id: newId('u'), kind: 'verify', campaign: c.name, hypothesisId: null, parentCommit: exp.parentCommit, targetCommit: exp.commit,
      targetExperiment: exp.id, hardwareClass: exp.hardwareClass, excludedWorker: c.spec.noise.allowSelfVerification ? null : exp.workerId,
      state: 'queued', createdAt: now, updatedAt: now,
    }).run()
  }
}

function cancelVerifications(tx: Writer, experimentId: string, now: number): void {
  q(tx).cancel.run({ experiment: experimentId, now })
}

/**
 * The life of a work unit: the only code that writes the `work_units` table (issue 18). Everything
 * else reads units and calls one of the verbs below; each verb is one guarded statement (its
 * WHERE clause holds the rule, as in graphile-worker's getJobs/completeJobs) and throws
 * IllegalTransition, saying which rule failed, when the unit is not in a state the verb may leave.
 *
 *              createUnit               leaseUnit (new token, attempts + 1)
 *   (none) ────────────────▶ queued ──────────────────────────────────────▶ leased ⟲ renewLease (a heartbeat)
 *                            │  │  ──────────────────────────────────────▶  │      ⟲ extendLeases (a restart)
 *                            │  │   reclaimLease (the lapsed lease's token)  │
 *                            │  │  ◀──────────────────────────────────────  │
 *                            │  │   expireLease (ran out; token kept)        │
 *                            │  │   requeueUnit (its worker lost it, or held it past maxHoldSeconds; new token)
 *      cancelVerifications   │  │ completeUnit (a late report                │ completeUnit (its report)
 *                            ▼  │ with the lapsed lease's token)             ▼
 *                     cancelled └──────────────────────────────────────────▶ done ◀──── recordDone ──── (none)
 *                            ▲                                               │
 *                            └───────────────────────────────────────────────┘
 *                              cancelLease (a verification whose candidate was closed)
 *
 *   queued ⟲ reserveVerifier, excludeVerifiers: who may lease a verification (verifier-draw.ts, judge.ts)
 *   recordDone: a rebase the coordinator merged itself (merge.ts), stored done as its worker's unit
 *
 * `done` and `cancelled` are final. A lapsed lease keeps its token while the unit waits in the
 * queue, so the worker still on it can take it back (reclaim) or report late (complete); a new
 * lease, or a requeue, replaces the token, and nothing carrying the old one counts any more
 * (DESIGN §8). A verification is cancelled once its candidate no longer needs it: queued ones by
 * cancelVerifications whatever the decision; a leased one by cancelLease only when its run could
 * count for nothing (its candidate rejected or discarded, or gone stale with its evidence dropped:
 * units/judge.ts closingReason), and its worker is told at once (events/bus.ts `unit-cancelled`).
 * A cancelled unit keeps its token, so its late report is refused as cancelled (units/report.ts).
 *
 * Hot paths (every lease, heartbeat and report) run prepared statements (db/prepared.ts); a verb
 * reads the row only when its guard refused, to say why.
 */
import { randomBytes } from 'node:crypto'
import { and, eq, inArray, isNull, lt, or, sql } from 'drizzle-orm'
import type { UnitState } from '@autoresearch-grid/shared'
import { newId } from '../context.ts'
import { workUnits } from '../db/schema.ts'
import type { Writer } from '../db/open.ts'
import { prepared } from '../db/prepared.ts'

export type Unit = typeof workUnits.$inferSelect

/** A verb that moves or edits one existing unit, and the states it may start from. */
export const LEGAL_FROM = {
  lease: ['queued'],
  reclaim: ['queued'],
  renew: ['leased'],
  expire: ['leased'],
  requeue: ['leased'],
  complete: ['queued', 'leased'],
  reserve: ['queued'],
  cancel: ['leased'],
} as const satisfies Record<string, readonly UnitState[]>
export type Verb = keyof typeof LEGAL_FROM

/** A verb asked of a unit that its state or its lease does not allow: a bug in the caller. */
export class IllegalTransition extends Error {
  override name = 'IllegalTransition'
  constructor(readonly verb: Verb | 'create', readonly unitId: string, readonly state: UnitState | null, why: string) {
    super(`cannot ${verb} work unit "${unitId}": ${why}`)
  }
}

/** What a verb's guard compares besides the state; absent fields are not compared. */
export interface Expect {
  workerId?: string
  token?: string
  now?: number
}

const p = sql.placeholder
const json = (v: unknown) => (v === null || v === undefined ? null : JSON.stringify(v))
const q = prepared(db => ({
  unit: db.select().from(workUnits).where(eq(workUnits.id, p('id'))).prepare(),
  // JSON columns take JSON text: through a bare placeholder drizzle would store null as the text "null".
  insert: db.insert(workUnits).values({
    id: p('id'), kind: p('kind'), campaign: p('campaign'), hypothesisId: p('hypothesisId'), parentCommit: p('parentCommit'),
    targetCommit: p('targetCommit'), targetExperiment: p('targetExperiment'), hardwareClass: p('hardwareClass'), excludedWorker: p('excludedWorker'),
    excludedContributors: sql`${p('excludedContributors')}`, workerId: p('workerId'), state: p('state'), attempts: 0, createdAt: p('now'), updatedAt: p('now'),
  }).prepare(),
  // A verification drawn for another worker stays closed to this one until the draw lapses (verifier-draw.ts).
  lease: db.update(workUnits).set({ workerId: sql`${p('worker')}`, leaseToken: sql`${p('token')}`, leaseExpiresAt: sql`${p('expires')}`, state: 'leased',
    attempts: sql`${workUnits.attempts} + 1`, updatedAt: sql`${p('now')}`, leasedAt: sql`${p('now')}`, progress: null })
    .where(and(eq(workUnits.id, p('id')), eq(workUnits.state, 'queued'),
      or(isNull(workUnits.reservedFor), eq(workUnits.reservedFor, p('worker')), sql`coalesce(${workUnits.reservedUntil}, 0) <= ${p('now')}`))).prepare(),
  reclaim: db.update(workUnits).set({ state: 'leased', workerId: sql`${p('worker')}` })
    .where(and(eq(workUnits.id, p('id')), eq(workUnits.state, 'queued'), eq(workUnits.leaseToken, p('token')))).prepare(),
  // A placeholder in set() bypasses the column's JSON encoding: `progress` comes as JSON text.
  renew: db.update(workUnits).set({ leaseExpiresAt: sql`${p('expires')}`, progress: sql`${p('progress')}`, updatedAt: sql`${p('now')}` })
    .where(and(eq(workUnits.id, p('id')), eq(workUnits.state, 'leased'), eq(workUnits.workerId, p('worker')), eq(workUnits.leaseToken, p('token')))).prepare(),
  expire: db.update(workUnits).set({ state: 'queued', workerId: null, updatedAt: sql`${p('now')}` })
    .where(and(eq(workUnits.id, p('id')), eq(workUnits.state, 'leased'), lt(workUnits.leaseExpiresAt, p('now')))).prepare(),
  requeue: db.update(workUnits).set({ state: 'queued', workerId: null, leaseToken: sql`${p('token')}`, updatedAt: sql`${p('now')}` })
    .where(and(eq(workUnits.id, p('id')), eq(workUnits.state, 'leased'), eq(workUnits.workerId, p('worker')))).prepare(),
  complete: db.update(workUnits).set({ state: 'done', updatedAt: sql`${p('now')}` })
    .where(and(eq(workUnits.id, p('id')), inArray(workUnits.state, ['queued', 'leased']), eq(workUnits.leaseToken, p('token')))).prepare(),
  reserve: db.update(workUnits).set({ reservedFor: sql`${p('worker')}`, reservedUntil: sql`${p('until')}` })
    .where(and(eq(workUnits.id, p('id')), eq(workUnits.state, 'queued'))).prepare(),
  // The verbs on all of a candidate's queued verifications: legal for each row their WHERE picks.
  exclude: db.update(workUnits).set({ excludedContributors: sql`${p('excluded')}` })
    .where(and(eq(workUnits.targetExperiment, p('experiment')), eq(workUnits.kind, 'verify'), eq(workUnits.state, 'queued'))).prepare(),
  cancel: db.update(workUnits).set({ state: 'cancelled', updatedAt: sql`${p('now')}` })
    .where(and(eq(workUnits.targetExperiment, p('experiment')), eq(workUnits.kind, 'verify'), eq(workUnits.state, 'queued'))).prepare(),
  // One leased verification; its token stays, so its worker's late report is told it was cancelled.
  cancelLease: db.update(workUnits).set({ state: 'cancelled', updatedAt: sql`${p('now')}` })
    .where(and(eq(workUnits.id, p('id')), eq(workUnits.kind, 'verify'), eq(workUnits.state, 'leased'))).prepare(),
  leasedVerifications: db.select({ id: workUnits.id, workerId: workUnits.workerId }).from(workUnits)
    .where(and(eq(workUnits.targetExperiment, p('experiment')), eq(workUnits.kind, 'verify'), eq(workUnits.state, 'leased'))).prepare(),
  extend: db.update(workUnits).set({ leaseExpiresAt: sql`${p('until')}` })
    .where(and(eq(workUnits.state, 'leased'), lt(workUnits.leaseExpiresAt, p('until')))).prepare(),
  // A restart starts every live lease's hold afresh: nobody could renew it while the coordinator was down.
  restartHolds: db.update(workUnits).set({ leasedAt: sql`${p('now')}` }).where(eq(workUnits.state, 'leased')).prepare(),
}))

/** Why `verb` may not run on this row (null: it may). Pure: the guards' rules in words. */
export function transitionProblem(verb: Verb, unit: Unit | undefined, expect: Expect = {}): string | null {
  if (!unit) return 'no such unit'
  const from: readonly UnitState[] = LEGAL_FROM[verb]
  if (!from.includes(unit.state)) return `it is ${unit.state}, and ${verb} needs ${from.join(' or ')}`
  const withToken: Verb[] = ['reclaim', 'renew', 'complete']
  if (expect.token !== undefined && withToken.includes(verb) && unit.leaseToken !== expect.token)
    return 'the lease token given is not its current one (it was leased again, or requeued, since)'
  if (expect.workerId !== undefined && (verb === 'renew' || verb === 'requeue') && unit.workerId !== expect.workerId)
    return `it is leased to ${unit.workerId ?? 'nobody'}, not to ${expect.workerId}`
  if (verb === 'expire' && expect.now !== undefined && !((unit.leaseExpiresAt ?? Infinity) < expect.now))
    return `its lease runs until ${unit.leaseExpiresAt}, after ${expect.now}`
  if (verb === 'cancel' && unit.kind !== 'verify') return `it is a ${unit.kind} unit, and only a verification is cancelled while it runs`
  if (verb === 'lease' && expect.now !== undefined && unit.reservedFor && unit.reservedFor !== expect.workerId && (unit.reservedUntil ?? 0) > expect.now)
    return `it is reserved for worker ${unit.reservedFor} until ${unit.reservedUntil}`
  return null
}

/** A work unit by id (prepared: every heartbeat, report and lease reads one). */
export function getUnit(tx: Writer, id: string): Unit | undefined {
  return q(tx).unit.get({ id })
}

/** Runs a guarded statement; when it changed nothing, reads the row and says which rule refused. */
function guarded(tx: Writer, verb: Verb, id: string, expect: Expect, run: () => { changes: number }): void {
  if (run().changes === 1) return
  const unit = q(tx).unit.get({ id })
  throw new IllegalTransition(verb, id, unit?.state ?? null, transitionProblem(verb, unit, expect) ?? 'its row did not match the guard')
}

/** What a new unit is; the rest of its row starts empty. */
export interface NewUnit {
  id?: string
  kind: Unit['kind']
  campaign: string
  hypothesisId: string | null
  parentCommit: string
  /** verify: the commit it re-measures. */
  targetCommit?: string | null
  /** verify: the candidate; rebase: the experiment whose idea it re-applies. */
  targetExperiment?: string | null
  hardwareClass?: string | null
  excludedWorker?: string | null
  excludedContributors?: string[] | null
}

/** Why a unit of this shape cannot exist (null: it can): each kind names what it works on. */
export function shapeProblem(n: NewUnit): string | null {
  if (n.kind === 'baseline' && !n.hardwareClass) return 'a baseline measures the best on one hardware class, and names none'
  // A verification without a class is the pooled policy's: any approved class may run it (units/verifier-draw.ts).
  if (n.kind === 'verify' && !(n.targetCommit && n.targetExperiment))
    return 'a verification names the candidate and its commit'
  if (n.kind === 'rebase' && !n.targetExperiment) return 'a rebase names the experiment whose idea it re-applies'
  return null
}

function insert(tx: Writer, n: NewUnit, state: 'queued' | 'done', workerId: string | null, now: number): Unit {
  const unit: Unit = {
    id: n.id ?? newId('u'), kind: n.kind, campaign: n.campaign, hypothesisId: n.hypothesisId, parentCommit: n.parentCommit,
    targetCommit: n.targetCommit ?? null, targetExperiment: n.targetExperiment ?? null, hardwareClass: n.hardwareClass ?? null,
    excludedWorker: n.excludedWorker ?? null, excludedContributors: n.excludedContributors ?? null, reservedFor: null, reservedUntil: null,
    workerId, leaseToken: null, leaseExpiresAt: null, leasedAt: null, attempts: 0, state, progress: null, createdAt: now, updatedAt: now,
  }
  const problem = shapeProblem(n)
  if (problem) throw new IllegalTransition('create', unit.id, null, problem)
  q(tx).insert.run({ ...unit, excludedContributors: json(unit.excludedContributors), now })
  return unit
}

/** (none) → queued. Returns the row as stored. */
export function createUnit(tx: Writer, n: NewUnit, now: number): Unit {
  return insert(tx, n, 'queued', null, now)
}

/** (none) → done: work the coordinator did itself (a clean three-way merge), recorded as its worker's unit. */
export function recordDone(tx: Writer, n: NewUnit, workerId: string, now: number): Unit {
  return insert(tx, n, 'done', workerId, now)
}

export interface Lease {
  workerId: string
  token: string
  expiresAt: number
}

/** queued → leased, to a worker under a new token, unless drawn for another worker meanwhile. Progress starts over. */
export function leaseUnit(tx: Writer, id: string, lease: Lease, now: number): void {
  guarded(tx, 'lease', id, { workerId: lease.workerId, now }, () => q(tx).lease.run({ id, worker: lease.workerId, token: lease.token, expires: lease.expiresAt, now }))
}

/** A fresh lease token: 128 random bits, so nobody can guess one to report or heartbeat with. */
export function newLeaseToken(): string {
  return randomBytes(16).toString('hex')
}

/** queued → leased again, to a worker that still carries the lapsed lease's token (its expiry is renewed next). */
export function reclaimLease(tx: Writer, id: string, workerId: string, token: string): void {
  guarded(tx, 'reclaim', id, { token }, () => q(tx).reclaim.run({ id, worker: workerId, token }))
}

/** leased ⟲: a heartbeat of the lease's worker, with its token, moves the expiry and records progress. */
export function renewLease(tx: Writer, id: string, lease: Lease, progress: unknown, now: number): void {
  guarded(tx, 'renew', id, { workerId: lease.workerId, token: lease.token }, () =>
    q(tx).renew.run({ id, worker: lease.workerId, token: lease.token, expires: lease.expiresAt, progress: json(progress), now }))
}

/** leased → queued, once its lease ran out; the token stays (a late report or heartbeat still counts). */
export function expireLease(tx: Writer, id: string, now: number): void {
  guarded(tx, 'expire', id, { now }, () => q(tx).expire.run({ id, now }))
}

/** leased → queued under a fresh token: its worker said it no longer holds it, so the old lease may not count. */
export function requeueUnit(tx: Writer, id: string, workerId: string, now: number): void {
  guarded(tx, 'requeue', id, { workerId }, () => q(tx).requeue.run({ id, worker: workerId, token: newLeaseToken(), now }))
}

/** queued | leased → done, by a report carrying the unit's current token (a lapsed one counts until replaced). */
export function completeUnit(tx: Writer, id: string, token: string, now: number): void {
  guarded(tx, 'complete', id, { token }, () => q(tx).complete.run({ id, token, now }))
}

/**
 * completeUnit for a report that raced others: false, and nothing changed, where completeUnit
 * would throw. A report is stored in two steps (git, then one transaction), and meanwhile another
 * report of the unit may land or the unit be leased again or cancelled: an outcome, not a bug.
 */
export function tryCompleteUnit(tx: Writer, id: string, token: string, now: number): boolean {
  return q(tx).complete.run({ id, token, now }).changes === 1
}

/** queued ⟲: only `workerId` may lease this verification until `until` (verifier-draw.ts). */
export function reserveVerifier(tx: Writer, id: string, workerId: string, until: number): void {
  guarded(tx, 'reserve', id, {}, () => q(tx).reserve.run({ id, worker: workerId, until }))
}

/** queued ⟲ for each queued verification of a candidate: the contributors none of whose workers may run it. */
export function excludeVerifiers(tx: Writer, experimentId: string, excluded: string[]): void {
  q(tx).exclude.run({ experiment: experimentId, excluded: JSON.stringify(excluded) })
}

/** queued → cancelled for each queued verification of a decided candidate (leased ones: cancelLease). Returns how many. */
export function cancelVerifications(tx: Writer, experimentId: string, now: number): number {
  return q(tx).cancel.run({ experiment: experimentId, now }).changes
}

/** The verifications of a candidate that workers are running now, and who runs each. */
export function leasedVerifications(tx: Writer, experimentId: string): { id: string; workerId: string }[] {
  return q(tx).leasedVerifications.all({ experiment: experimentId }).map(u => ({ id: u.id, workerId: u.workerId ?? '' }))
}

/**
 * leased → cancelled, for a verification whose run can no longer count (its candidate was closed):
 * the caller tells its worker once the transaction commits, so the GPU stops now rather than at
 * the end of a run whose report would be thrown away.
 */
export function cancelLease(tx: Writer, id: string, now: number): void {
  guarded(tx, 'cancel', id, {}, () => q(tx).cancelLease.run({ id, now }))
}

/** leased ⟲ for every lease that ends before `until`: it ends then instead. Returns how many. */
export function extendLeases(tx: Writer, until: number, now: number): number {
  q(tx).restartHolds.run({ now })
  return q(tx).extend.run({ until }).changes
}

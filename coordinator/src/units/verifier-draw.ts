import { randomInt } from 'node:crypto'
import { and, eq, gte, inArray, sql } from 'drizzle-orm'
import { workers, workUnits } from '../db/schema.ts'
import type { Writer } from '../db/open.ts'
import { prepared } from '../db/prepared.ts'
import { ACTIVE_WORKER_MS } from '../classes/approval.ts'
import { reserveVerifier, type Unit } from './lifecycle.ts'

/**
 * Who runs a verification (issue 15): a worker drawn at random among those eligible, not the next
 * one to ask. Handing a queued verification to whoever asks first lets an author predict its
 * verifier — a friend kept idle and polling gets it. The draw is among the class's workers seen
 * lately (ACTIVE_WORKER_MS), not banned, of no excluded contributor (the author's; those that
 * verified already while more distinct contributors are needed) and of no suspect (units/suspects.ts:
 * a suspect's runs are no evidence), with a cryptographic random
 * index: a contributor first, then one of its workers (`drawByContributor`), among contributors still in credit
 * with the candidate's author (`inCredit`). Only the drawn worker may take the unit until `reserved_until`; then another is drawn
 * (a drawn worker that went away holds nobody up for longer than one window). With nobody
 * eligible the unit stays open to any eligible worker that asks. A classless verification (the
 * pooled policy: any approved class's run is evidence) is drawn among the workers of every class
 * `approved` lets through.
 */
const q = prepared(db => ({
  pool: db.select({ id: workers.id, contributorId: workers.contributorId }).from(workers)
    .where(and(eq(workers.hardwareClass, sql.placeholder('cls')), eq(workers.banned, false), gte(workers.lastSeen, sql.placeholder('since')))).prepare(),
  everyClass: db.select({ id: workers.id, contributorId: workers.contributorId, cls: workers.hardwareClass }).from(workers)
    .where(and(eq(workers.banned, false), gte(workers.lastSeen, sql.placeholder('since')))).prepare(),
  // Contributors already on a candidate: holding one of its verifications, or having run one.
  onTarget: db.select({ c: workers.contributorId }).from(workUnits).innerJoin(workers, eq(workers.id, workUnits.workerId))
    .where(and(eq(workUnits.targetExperiment, sql.placeholder('target')), eq(workUnits.kind, 'verify'), inArray(workUnits.state, ['leased', 'done']))).prepare(),
  /** The pool by class for a second: leases with verifications queued would otherwise each read every worker of the class. */
  poolCache: new Map<string, { at: number; pool: { id: string; contributorId: string }[] }>(),
}))

export function excludedOf(u: Pick<Unit, 'excludedContributors'>): string[] {
  return Array.isArray(u.excludedContributors) ? u.excludedContributors : []
}

/**
 * Draws a verifier for each queued verification among `units` without a live reservation;
 * returns the units as they are now (reservations filled in) and whether any draw happened.
 */
export function drawVerifiers(tx: Writer, units: Unit[], now: number, windowMs: number, suspects: readonly string[] = [],
  approved: (cls: string) => boolean = () => false, inCredit?: (verifier: string, u: Unit) => boolean): { units: Unit[]; drawn: boolean } {
  const poolFor = (u: Unit) => (u.hardwareClass === null ? approvedPool(tx, pools, now, approved) : poolOf(tx, pools, u.hardwareClass, now))
  let drawn = false
  const pools = new Map<string, { id: string; contributorId: string }[]>()
  const contributorOf = (id: string | null) => [...pools.values()].flat().find(w => w.id === id)?.contributorId
  // Per candidate, the contributors already on it: a second verification goes to someone else when anyone else is eligible.
  const busy = new Map<string, Set<string>>()
  const busyOn = (target: string) => {
    let set = busy.get(target)
    if (!set) busy.set(target, (set = new Set(q(tx).onTarget.all({ target }).map(r => r.c))))
    return set
  }
  for (const u of units) if (u.kind === 'verify' && u.targetExperiment && u.reservedFor && (u.reservedUntil ?? 0) > now) poolFor(u)
  for (const u of units) {
    const c = u.kind === 'verify' && u.targetExperiment && u.reservedFor && (u.reservedUntil ?? 0) > now ? contributorOf(u.reservedFor) : undefined
    if (c) busyOn(u.targetExperiment!).add(c)
  }
  const out = units.map(u => {
    if (u.kind !== 'verify' || u.state !== 'queued' || (u.reservedFor && (u.reservedUntil ?? 0) > now)) return u
    const excluded = excludedOf(u)
    const anyEligible = poolFor(u).filter(w => !excluded.includes(w.contributorId) && !suspects.includes(w.contributorId) && w.id !== u.excludedWorker)
    // Nobody in credit with the author (units/reciprocity.ts): open to whoever may take it, as with nobody eligible.
    const eligible = inCredit ? anyEligible.filter(w => inCredit(w.contributorId, u)) : anyEligible
    if (!eligible.length) return { ...u, reservedFor: null, reservedUntil: null }
    const taken = u.targetExperiment ? busyOn(u.targetExperiment) : new Set<string>()
    const fresh = eligible.filter(w => !taken.has(w.contributorId))
    const from = fresh.length ? fresh : eligible
    const pick = drawByContributor(from)
    taken.add(pick.contributorId)
    reserveVerifier(tx, u.id, pick.id, now + windowMs)
    drawn = true
    return { ...u, reservedFor: pick.id, reservedUntil: now + windowMs }
  })
  return { units: out, drawn }
}

/**
 * A contributor first, each with the same chance, then one of its workers: a worker name costs
 * nothing (`hello` with a new one), so a draw among workers went to whoever registered the most
 * (test/hostile/sybil-workers.test.ts: 200 idle names won 24 draws of 24 against one real worker).
 */
function drawByContributor<W extends { contributorId: string }>(pool: readonly W[]): W {
  const contributors = [...new Set(pool.map(w => w.contributorId))]
  const contributor = contributors[randomInt(contributors.length)]
  const theirs = pool.filter(w => w.contributorId === contributor)
  return theirs[randomInt(theirs.length)]
}

/** Active workers of every approved class, under the key '' (no class is named so). */
function approvedPool(tx: Writer, pools: Map<string, { id: string; contributorId: string }[]>, now: number, approved: (cls: string) => boolean) {
  let pool = pools.get('')
  if (!pool) pools.set('', (pool = q(tx).everyClass.all({ since: now - ACTIVE_WORKER_MS }).filter(w => approved(w.cls)).map(w => ({ id: w.id, contributorId: w.contributorId }))))
  return pool
}

function poolOf(tx: Writer, pools: Map<string, { id: string; contributorId: string }[]>, cls: string, now: number) {
  let pool = pools.get(cls)
  if (pool) return pool
  const { poolCache } = q(tx)
  const hit = poolCache.get(cls)
  if (hit && Math.abs(now - hit.at) < 1000) pool = hit.pool
  else {
    if (poolCache.size > 100) poolCache.clear()
    pool = q(tx).pool.all({ cls, since: now - ACTIVE_WORKER_MS })
    poolCache.set(cls, { at: now, pool })
  }
  pools.set(cls, pool)
  return pool
}

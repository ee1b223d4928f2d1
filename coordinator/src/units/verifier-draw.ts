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
 * index: a contributor first, then one of its workers, among contributors still in credit
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
  poolCache: new Map<string, { at: number; pool: Pool }>(),
  /** Every active worker by class, for a second: the classless pool is made of the approved ones. */
  classesCache: null as { at: number; classes: Map<string, { id: string; contributorId: string }[]> } | null,
}))

export function excludedOf(u: Pick<Unit, 'excludedContributors'>): string[] {
  return Array.isArray(u.excludedContributors) ? u.excludedContributors : []
}

/** The workers of a pool by contributor, and each worker's contributor: a draw reads these, never the whole pool. */
interface Pool { byContributor: Map<string, string[]>; contributorOf: Map<string, string> }

function poolIndex(workers: readonly { id: string; contributorId: string }[]): Pool {
  const byContributor = new Map<string, string[]>()
  const contributorOf = new Map<string, string>()
  for (const w of workers) {
    contributorOf.set(w.id, w.contributorId)
    const theirs = byContributor.get(w.contributorId)
    if (theirs) theirs.push(w.id)
    else byContributor.set(w.contributorId, [w.id])
  }
  return { byContributor, contributorOf }
}

/**
 * Draws a verifier for each queued verification among `units` without a live reservation;
 * returns the units as they are now (reservations filled in) and whether any draw happened.
 * Each draw costs the number of contributors in the pool, not of workers: with thousands of
 * verifications queued and thousands of workers in a class, a lease that drew for all of them
 * read every worker once per verification (18 s in one batch of leases, docs/PERFORMANCE.md,
 * "Fourteenth pass").
 */
export function drawVerifiers(tx: Writer, units: Unit[], now: number, windowMs: number, suspects: readonly string[] = [],
  approved: (cls: string) => boolean = () => false, inCredit?: (verifier: string, u: Unit) => boolean): { units: Unit[]; drawn: boolean } {
  const pools = new Map<string, Pool>()
  const poolFor = (u: Unit): Pool => {
    const key = u.hardwareClass ?? ''
    let pool = pools.get(key)
    if (!pool) pools.set(key, (pool = u.hardwareClass === null ? approvedPool(tx, now, approved) : poolOf(tx, u.hardwareClass, now)))
    return pool
  }
  let drawn = false
  // A live reservation holds while its contributor is still in credit with the author. One that
  // ran out since (its earlier verifications of the same author were reported) is never given the
  // unit by the scheduler (`outOfCredit`), and held it from everyone else for the whole window:
  // a claim waited 10 minutes for its last verification (test/hostile/forged-results.test.ts).
  const liveReservation = (u: Unit) => {
    if (!u.reservedFor || (u.reservedUntil ?? 0) <= now) return false
    const holder = inCredit && u.targetExperiment ? poolFor(u).contributorOf.get(u.reservedFor) : undefined
    return holder === undefined || inCredit!(holder, u)
  }
  // Asked once per unit: the credit check reads the author's exchange.
  const live = new Map<string, boolean>()
  const reservedNow = (u: Unit) => {
    let held = live.get(u.id)
    if (held === undefined) live.set(u.id, (held = liveReservation(u)))
    return held
  }
  // Per candidate, the contributors already on it (holding a live reservation among `units`, holding
  // or having run one of its verifications): a second verification goes to someone else when anyone
  // else is eligible. Read only for a candidate that gets a draw: most leases draw nothing, and a
  // read per reserved candidate in the window was a fifth of a lease at 10,000 workers.
  const reservedOn = new Map<string, string[]>()
  for (const u of units) {
    if (u.kind !== 'verify' || !u.targetExperiment || !reservedNow(u)) continue
    const c = poolFor(u).contributorOf.get(u.reservedFor!)
    if (c) reservedOn.set(u.targetExperiment, [...(reservedOn.get(u.targetExperiment) ?? []), c])
  }
  const busy = new Map<string, Set<string>>()
  const busyOn = (target: string) => {
    let set = busy.get(target)
    if (!set) busy.set(target, (set = new Set([...q(tx).onTarget.all({ target }).map(r => r.c), ...(reservedOn.get(target) ?? [])])))
    return set
  }
  const out = units.map(u => {
    if (u.kind !== 'verify' || u.state !== 'queued' || reservedNow(u)) return u
    const excluded = excludedOf(u)
    // Eligible contributors, each with its workers that may take the unit.
    const eligible: [string, string[]][] = []
    for (const [contributor, workers] of poolFor(u).byContributor) {
      if (excluded.includes(contributor) || suspects.includes(contributor)) continue
      // Nobody in credit with the author (units/reciprocity.ts): open to whoever may take it, as with nobody eligible.
      if (inCredit && !inCredit(contributor, u)) continue
      const theirs = u.excludedWorker ? workers.filter(w => w !== u.excludedWorker) : workers
      if (theirs.length) eligible.push([contributor, theirs])
    }
    if (!eligible.length) return { ...u, reservedFor: null, reservedUntil: null }
    const taken = u.targetExperiment ? busyOn(u.targetExperiment) : new Set<string>()
    const fresh = eligible.filter(([c]) => !taken.has(c))
    // A contributor first, each with the same chance, then one of its workers: a worker name costs
    // nothing (`hello` with a new one), so a draw among workers went to whoever registered the most
    // (test/hostile/sybil-workers.test.ts: 200 idle names won 24 draws of 24 against one real worker).
    const from = fresh.length ? fresh : eligible
    const [contributor, workers] = from[randomInt(from.length)]
    const pick = workers[randomInt(workers.length)]
    taken.add(contributor)
    reserveVerifier(tx, u.id, pick, now + windowMs)
    drawn = true
    return { ...u, reservedFor: pick, reservedUntil: now + windowMs }
  })
  return { units: out, drawn }
}

/**
 * Active workers of every approved class, indexed. Read for every lease while a classless
 * verification is queued (the default policy's): the workers by class are read once a second, and
 * the index of each set of approved classes is kept as long, so a lease reads neither 10,000
 * workers nor builds their index.
 */
function approvedPool(tx: Writer, now: number, approved: (cls: string) => boolean): Pool {
  const { poolCache } = q(tx)
  let byClass = q(tx).classesCache
  if (!byClass || Math.abs(now - byClass.at) >= 1000) {
    const classes = new Map<string, { id: string; contributorId: string }[]>()
    for (const w of q(tx).everyClass.all({ since: now - ACTIVE_WORKER_MS })) {
      const theirs = classes.get(w.cls)
      if (theirs) theirs.push({ id: w.id, contributorId: w.contributorId })
      else classes.set(w.cls, [{ id: w.id, contributorId: w.contributorId }])
    }
    q(tx).classesCache = byClass = { at: now, classes }
  }
  const chosen = [...byClass.classes.keys()].filter(approved).sort()
  // Keyed by the read too: an index is never older than the workers it was made of.
  return cached(poolCache, `\0approved\0${byClass.at}\0${chosen.join('\0')}`, now, () => poolIndex(chosen.flatMap(c => byClass.classes.get(c)!)))
}

function poolOf(tx: Writer, cls: string, now: number): Pool {
  return cached(q(tx).poolCache, cls, now, () => poolIndex(q(tx).pool.all({ cls, since: now - ACTIVE_WORKER_MS })))
}

/** A pool made at most a second ago under `key`, or `make`'s, kept. */
function cached(cache: Map<string, { at: number; pool: Pool }>, key: string, now: number, make: () => Pool): Pool {
  const hit = cache.get(key)
  if (hit && Math.abs(now - hit.at) < 1000) return hit.pool
  if (cache.size > 100) cache.clear()
  const pool = make()
  cache.set(key, { at: now, pool })
  return pool
}

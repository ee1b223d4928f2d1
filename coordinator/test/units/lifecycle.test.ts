import t, { type Test } from 'tap'
import { UNIT_STATES, type UnitState } from '@autoresearch-grid/shared'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openDb, type Db } from '../../src/db/open.ts'
import { campaigns } from '../../src/db/schema.ts'
import {
  cancelLease, cancelVerifications, completeUnit, createUnit, excludeVerifiers, expireLease, extendLeases, IllegalTransition, LEGAL_FROM, leaseUnit, newLeaseToken,
  leasedVerifications, reclaimLease, recordDone, renewLease, requeueUnit, reserveVerifier, tryCompleteUnit, type NewUnit, type Verb,
} from '../../src/units/lifecycle.ts'

// The work-unit life cycle (units/lifecycle.ts) on a real SQLite file: each verb moves a unit only
// from the states its header allows, checks the lease it is given, and says why when it refuses.

const T0 = 1_000_000
const LATER = T0 + 100
const ann = 'w_ann'
const bob = 'w_bob'
const verify = (target = 'e_1'): NewUnit => ({ kind: 'verify', campaign: 'demo', hypothesisId: null, parentCommit: 'p1', targetCommit: 'c1', targetExperiment: target, hardwareClass: 'cpu-x86_64' })

async function open(t: Test): Promise<Db> {
  const dir = await mkdtemp(join(tmpdir(), 'arg-units-'))
  const db = openDb(join(dir, 'coordinator.db'))
  t.teardown(async () => { db.$client.close(); await rm(dir, { recursive: true, force: true }) })
  db.insert(campaigns).values({ name: 'demo', branch: 'autoresearch/demo', spec: {}, bestCommit: 'p1' }).run()
  return db
}

const row = (db: Db, id: string) => db.$client.prepare('select * from work_units where id = ?').get(id) as Record<string, unknown>

/** A unit leased to ann whose lease ran out at T0 + 10 (still leased: nothing swept it). */
function leased(db: Db, n: NewUnit = verify()): { id: string; token: string } {
  const { id } = createUnit(db, n, T0)
  const token = newLeaseToken()
  leaseUnit(db, id, { workerId: ann, token, expiresAt: T0 + 10 }, T0)
  return { id, token }
}

/** A unit brought into `state` by the verbs; queued ones carry the token of a lapsed lease. */
function unitIn(db: Db, state: UnitState): { id: string; token: string } {
  const u = leased(db, verify(`e_${state}_${Math.random()}`))
  if (state === 'leased') return u
  if (state === 'done') completeUnit(db, u.id, u.token, LATER)
  else expireLease(db, u.id, LATER)
  if (state === 'cancelled') cancelVerifications(db, row(db, u.id).target_experiment as string, LATER)
  return u
}

/** Each verb, called as its caller would (ann's lease and token where it takes them). */
const call: Record<Verb, (db: Db, u: { id: string; token: string }) => void> = {
  lease: (db, u) => leaseUnit(db, u.id, { workerId: ann, token: newLeaseToken(), expiresAt: LATER + 10 }, LATER),
  reclaim: (db, u) => reclaimLease(db, u.id, ann, u.token),
  renew: (db, u) => renewLease(db, u.id, { workerId: ann, token: u.token, expiresAt: LATER + 10 }, null, LATER),
  expire: (db, u) => expireLease(db, u.id, LATER),
  requeue: (db, u) => requeueUnit(db, u.id, ann, LATER),
  complete: (db, u) => completeUnit(db, u.id, u.token, LATER),
  reserve: (db, u) => reserveVerifier(db, u.id, bob, LATER + 10),
  cancel: (db, u) => cancelLease(db, u.id, LATER),
}

t.test('every verb runs from exactly the states the diagram allows, and refuses the others with the state named', async t => {
  const db = await open(t)
  for (const verb of Object.keys(LEGAL_FROM) as Verb[]) {
    for (const state of UNIT_STATES) {
      const u = unitIn(db, state)
      const legal = (LEGAL_FROM[verb] as readonly UnitState[]).includes(state)
      if (legal) t.doesNotThrow(() => call[verb](db, u), `${verb} from ${state}`)
      else {
        const before = row(db, u.id)
        t.throws(() => call[verb](db, u), { name: 'IllegalTransition', message: `cannot ${verb} work unit "${u.id}": it is ${state}, and ${verb} needs` },
          `${verb} from ${state} is refused`)
        t.same(row(db, u.id), before, `and ${verb} from ${state} changed nothing`)
      }
    }
  }
})

t.test('a unit that does not exist is named as such', async t => {
  const db = await open(t)
  t.throws(() => completeUnit(db, 'u_nope', 'x', T0), new IllegalTransition('complete', 'u_nope', null, 'no such unit'))
})

t.test('create queues a unit; recordDone stores one done by its worker', async t => {
  const db = await open(t)
  const q = createUnit(db, verify(), T0)
  t.match(row(db, q.id), { state: 'queued', kind: 'verify', worker_id: null, lease_token: null, attempts: 0, target_commit: 'c1', created_at: T0 })
  t.same(q, { ...q, state: 'queued', attempts: 0 }, 'the row it returns is the row stored')
  const d = recordDone(db, { kind: 'rebase', campaign: 'demo', hypothesisId: null, parentCommit: 'p2', targetExperiment: 'e_1' }, ann, T0)
  t.match(row(db, d.id), { state: 'done', kind: 'rebase', worker_id: ann })
})

t.test('a unit missing what its kind works on is refused before it is stored', async t => {
  const db = await open(t)
  t.throws(() => createUnit(db, { ...verify(), targetCommit: null }, T0), { name: 'IllegalTransition', message: /a verification names the candidate/ })
  t.throws(() => createUnit(db, { kind: 'rebase', campaign: 'demo', hypothesisId: null, parentCommit: 'p1' }, T0), { message: /a rebase names the experiment/ })
  t.throws(() => createUnit(db, { kind: 'baseline', campaign: 'demo', hypothesisId: null, parentCommit: 'p1' }, T0), { message: /a baseline measures the best on one hardware class/ })
  t.equal((db.$client.prepare('select count(*) as n from work_units').get() as { n: number }).n, 0, 'none was stored')
})

t.test('lease gives the unit a new token and worker, counts the attempt and clears old progress', async t => {
  const db = await open(t)
  const u = leased(db)
  renewLease(db, u.id, { workerId: ann, token: u.token, expiresAt: T0 + 20 }, { step: 3 }, T0 + 1)
  expireLease(db, u.id, LATER)
  const token = newLeaseToken()
  leaseUnit(db, u.id, { workerId: bob, token, expiresAt: LATER + 50 }, LATER)
  t.match(row(db, u.id), { state: 'leased', worker_id: bob, lease_token: token, lease_expires_at: LATER + 50, attempts: 2, progress: null, updated_at: LATER })
  t.not(token, u.token, 'a fresh token')
})

t.test('a verification drawn for another worker cannot be leased until the draw lapses; its drawn worker may', async t => {
  const db = await open(t)
  const { id } = createUnit(db, verify(), T0)
  reserveVerifier(db, id, bob, T0 + 50)
  t.throws(() => leaseUnit(db, id, { workerId: ann, token: newLeaseToken(), expiresAt: T0 + 99 }, T0 + 10),
    { message: `cannot lease work unit "${id}": it is reserved for worker ${bob} until ${T0 + 50}` })
  t.equal(row(db, id).state, 'queued')
  leaseUnit(db, id, { workerId: ann, token: newLeaseToken(), expiresAt: T0 + 99 }, T0 + 50)
  t.equal(row(db, id).worker_id, ann, 'once the draw lapsed, anyone the scheduler picks')
  const other = createUnit(db, verify(), T0)
  reserveVerifier(db, other.id, bob, T0 + 50)
  leaseUnit(db, other.id, { workerId: bob, token: newLeaseToken(), expiresAt: T0 + 99 }, T0 + 10)
  t.equal(row(db, other.id).worker_id, bob, 'the drawn worker, within the draw')
})

t.test('renew needs the lease\'s worker and token; it moves the expiry and stores the progress', async t => {
  const db = await open(t)
  const u = leased(db)
  t.throws(() => renewLease(db, u.id, { workerId: ann, token: 'forged', expiresAt: T0 + 99 }, null, T0 + 1), { message: /the lease token given is not its current one/ })
  t.throws(() => renewLease(db, u.id, { workerId: bob, token: u.token, expiresAt: T0 + 99 }, null, T0 + 1), { message: `cannot renew work unit "${u.id}": it is leased to ${ann}, not to ${bob}` })
  renewLease(db, u.id, { workerId: ann, token: u.token, expiresAt: T0 + 99 }, { step: 7, fraction: 0.5 }, T0 + 1)
  t.match(row(db, u.id), { lease_expires_at: T0 + 99, progress: '{"step":7,"fraction":0.5}', updated_at: T0 + 1 })
})

t.test('expire waits for the lease to run out, then queues the unit and keeps its token', async t => {
  const db = await open(t)
  const u = leased(db)
  t.throws(() => expireLease(db, u.id, T0 + 10), { message: `cannot expire work unit "${u.id}": its lease runs until ${T0 + 10}, after ${T0 + 10}` })
  expireLease(db, u.id, T0 + 11)
  t.match(row(db, u.id), { state: 'queued', worker_id: null, lease_token: u.token })
})

t.test('a lapsed lease is reclaimed with its own token only', async t => {
  const db = await open(t)
  const u = leased(db)
  expireLease(db, u.id, LATER)
  t.throws(() => reclaimLease(db, u.id, bob, newLeaseToken()), { message: /not its current one/ })
  reclaimLease(db, u.id, ann, u.token)
  t.match(row(db, u.id), { state: 'leased', worker_id: ann, lease_token: u.token })
})

t.test('requeue takes a unit from the worker that lost it, under a fresh token the old lease cannot use', async t => {
  const db = await open(t)
  const u = leased(db)
  t.throws(() => requeueUnit(db, u.id, bob, LATER), { message: /it is leased to w_ann, not to w_bob/ })
  requeueUnit(db, u.id, ann, LATER)
  const after = row(db, u.id)
  t.match(after, { state: 'queued', worker_id: null })
  t.not(after.lease_token, u.token, 'the token changed')
  t.throws(() => reclaimLease(db, u.id, ann, u.token), { message: /not its current one/ }, 'the old lease cannot take it back')
  t.throws(() => completeUnit(db, u.id, u.token, LATER), { message: /not its current one/ }, 'nor report it')
})

t.test('complete needs the current token: a late report after expiry counts, a second report does not', async t => {
  const db = await open(t)
  const u = leased(db)
  expireLease(db, u.id, LATER)
  t.throws(() => completeUnit(db, u.id, 'forged', LATER), { message: /not its current one/ })
  completeUnit(db, u.id, u.token, LATER)
  t.match(row(db, u.id), { state: 'done', updated_at: LATER })
  t.throws(() => completeUnit(db, u.id, u.token, LATER + 1), { message: `cannot complete work unit "${u.id}": it is done, and complete needs queued or leased` })
  t.equal(tryCompleteUnit(db, u.id, u.token, LATER + 1), false, 'the racing form answers false instead')
  t.equal(row(db, u.id).updated_at, LATER, 'and changes nothing')
})

t.test('a decided candidate\'s queued verifications are cancelled; leased ones run on, and other candidates\' are untouched', async t => {
  const db = await open(t)
  const queued = createUnit(db, verify('e_1'), T0)
  const running = leased(db, verify('e_1'))
  const other = createUnit(db, verify('e_2'), T0)
  t.equal(cancelVerifications(db, 'e_1', LATER), 1)
  t.same([row(db, queued.id).state, row(db, running.id).state, row(db, other.id).state], ['cancelled', 'leased', 'queued'])
  t.throws(() => call.lease(db, { id: queued.id, token: '' }), { message: /it is cancelled, and lease needs queued/ }, 'a cancelled unit is never leased')
})

t.test('a leased verification is cancelled with its token kept; a leased baseline is not', async t => {
  const db = await open(t)
  const running = leased(db, verify('e_1'))
  const other = leased(db, verify('e_2'))
  t.same(leasedVerifications(db, 'e_1'), [{ id: running.id, workerId: ann }], 'the running verifications of a candidate, and who runs each')
  cancelLease(db, running.id, LATER)
  t.match(row(db, running.id), { state: 'cancelled', worker_id: ann, lease_token: running.token, updated_at: LATER })
  t.same(leasedVerifications(db, 'e_1'), [], 'no longer running')
  t.equal(row(db, other.id).state, 'leased', 'another candidate\'s verification runs on')
  t.throws(() => completeUnit(db, running.id, running.token, LATER + 1), { message: /it is cancelled, and complete needs queued or leased/ }, 'its late report completes nothing')
  t.throws(() => renewLease(db, running.id, { workerId: ann, token: running.token, expiresAt: LATER + 99 }, null, LATER + 1), { message: /it is cancelled, and renew needs leased/ })
  const baseline = leased(db, { kind: 'baseline', campaign: 'demo', hypothesisId: null, parentCommit: 'p1', hardwareClass: 'cpu-x86_64' })
  t.throws(() => cancelLease(db, baseline.id, LATER), { message: `cannot cancel work unit "${baseline.id}": it is a baseline unit, and only a verification is cancelled while it runs` })
  t.equal(row(db, baseline.id).state, 'leased', 'and it runs on')
})

t.test('exclusions are rewritten on a candidate\'s queued verifications only', async t => {
  const db = await open(t)
  const queued = createUnit(db, { ...verify('e_1'), excludedContributors: ['c_author'] }, T0)
  const running = leased(db, { ...verify('e_1'), excludedContributors: ['c_author'] })
  excludeVerifiers(db, 'e_1', ['c_author', 'c_first'])
  t.equal(row(db, queued.id).excluded_contributors, '["c_author","c_first"]')
  t.equal(row(db, running.id).excluded_contributors, '["c_author"]')
})

t.test('after a restart, leases ending sooner are extended to the margin; later ones and queued units are left alone', async t => {
  const db = await open(t)
  const soon = leased(db)
  const late = createUnit(db, verify(), T0)
  leaseUnit(db, late.id, { workerId: bob, token: newLeaseToken(), expiresAt: T0 + 500 }, T0)
  const queued = unitIn(db, 'queued')
  t.equal(extendLeases(db, T0 + 200, T0), 1)
  t.same([row(db, soon.id).lease_expires_at, row(db, late.id).lease_expires_at, row(db, queued.id).state], [T0 + 200, T0 + 500, 'queued'])
})

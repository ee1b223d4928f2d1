import t, { type Test } from 'tap'
import type { AssignmentEvent, WorkUnit } from '@autoresearch-grid/shared'
import { CPU, joinWorkers, report, startCoordinator, wsClient } from '../helpers.ts'
import { drive, freshEdit, type Driven } from './drive.ts'
import { VERIFY_CREDIT } from '../../src/scheduler/index.ts'

// Verification comes before exploration, so a contributor that makes candidates faster than others
// verify them (a fast researcher, or a hostile one whose claims clear the screen without ever
// tripping the suspect rules) kept another contributor's workers verifying and never exploring: in
// session 16 a clean clone's campaign-data test waited 30 minutes for alice's first idea while her
// worker verified bob's. Now a contributor verifies another's candidates up to a credit
// (VERIFY_CREDIT runs, and two more for each run the other verified back); past it, that work is
// left to others while its workers may explore.

type Coordinator = Awaited<ReturnType<typeof startCoordinator>>

async function worker(c: Coordinator, token: string, name: string): Promise<Driven & { units: WorkUnit[]; close(): void }> {
  const { api, close } = wsClient(c.url, token)
  const { workerId } = await api.worker.hello.mutate({ name, hardware: CPU, fingerprints: {}, version: 't' })
  const units: WorkUnit[] = []
  const queue: WorkUnit[] = []
  const sub = api.worker.assignments.subscribe({ workerId }, { onData: (e: AssignmentEvent) => { if (e.type === 'unit') { units.push(e.unit); queue.push(e.unit) } } })
  const next = async () => { while (!queue.length) await new Promise(r => setTimeout(r, 20)); return queue.shift()! }
  return { name, api: api as never, workerId, units, next, close: () => { sub.unsubscribe(); close() } }
}

t.test('a contributor whose candidates come faster than others verify them does not keep their workers from exploring', async t => {
  const c = await startCoordinator()
  t.teardown(c.close)
  await c.campaign('demo', { replications: 1, baselineRuns: 1 })
  const alice = await worker(c, c.workerToken('alice'), 'alice')
  const bobToken = c.workerToken('bob')
  const bob = [await worker(c, bobToken, 'bob-1'), await worker(c, bobToken, 'bob-2')]
  t.teardown(() => [alice, ...bob].forEach(w => w.close()))
  const played: string[] = []
  await drive([alice, ...bob], (w, u) => {
    if (w === alice) {
      played.push(u.kind)
      // Alice's ideas are no better than the seed; her verifications agree with bob's claims, so
      // nothing here makes bob a suspect.
      return u.kind === 'explore' ? report(u, 1.6, freshEdit(u.source['train.py'])) : report(u, u.kind === 'verify' ? 1.48 : 1.5)
    }
    // Bob's two workers claim 2σ on every idea, one after the other.
    return u.kind === 'explore' ? report(u, 1.48, freshEdit(u.source['train.py'])) : report(u, 1.5)
  }, () => played.length >= 24)

  const verified = played.filter(k => k === 'verify').length
  const explored = played.filter(k => k === 'explore').length
  t.comment(`RESULT alice's 24 units: ${verified} verifications of bob's candidates, ${explored} explorations`)
  t.ok(verified >= 1, 'she verifies bob\'s candidates')
  t.ok(verified <= VERIFY_CREDIT, `but no more than her credit with him (${verified} ≤ ${VERIFY_CREDIT}): he verified none of hers`)
  // Without the credit she explored 2-3 of 24 here: only while bob's next candidate was on its way.
  t.ok(explored >= 12, `and then explores (${explored} of 24)`)
  const rows = c.app.db.$client.prepare('select verifier, author, runs from verify_exchange').all() as { verifier: string; author: string; runs: number }[]
  t.equal(rows.length, 1, 'one pair on record')
  t.equal(rows[0].runs, verified, 'her measured verifications, counted for bob')
})

/**
 * A campaign with ben, the author, and carol and dee, who may verify him; `spent(name)` records that
 * name's contributor has verified ben's candidates up to its credit, and ben none of theirs.
 */
async function authorAndTwoVerifiers(t: Test) {
  const c = await startCoordinator()
  t.teardown(c.close)
  await c.campaign('demo', { replications: 1, baselineRuns: 1 })
  const [ben, carol, dee] = await joinWorkers(c, ['ben', 'carol', 'dee'])
  t.teardown(() => [ben, carol, dee].forEach(w => w.close()))
  const sql = c.app.db.$client
  const contributorOf = (name: string) => (sql.prepare('select contributor_id as id from workers where name = ?').get(name) as { id: string }).id
  const spent = (name: string) => sql.prepare("insert into verify_exchange (campaign, verifier, author, runs) values ('demo', ?, ?, ?)").run(contributorOf(name), contributorOf('ben'), VERIFY_CREDIT)
  return { ben, sql, contributorOf, spent }
}

t.test('the verifier draw prefers contributors still in credit with the author', async t => {
  const { ben, sql, spent } = await authorAndTwoVerifiers(t)
  spent('carol')
  await ben.api.worker.report.mutate({ workerId: ben.workerId, report: report(await ben.next(), 1.5) })
  const CANDIDATES = 12
  for (let i = 0; i < CANDIDATES; i++) {
    const u = await ben.next()
    await ben.api.worker.report.mutate({ workerId: ben.workerId, report: report(u, 1.45, freshEdit(u.source['train.py'])) })
  }
  await ben.next() // one more lease: the last candidate's verification is drawn too
  const drawn = sql.prepare("select w.name as name from work_units u join workers w on w.id = u.reserved_for where u.kind = 'verify'").all() as { name: string }[]
  t.equal(drawn.length, CANDIDATES, 'every verification was drawn')
  t.same([...new Set(drawn.map(d => d.name))], ['dee'], 'all to dee, in credit; none to carol (drawn at random, she had about half)')
})

t.test('a verification reserved for a contributor that has since run out of credit is drawn again, not held for its window', async t => {
  const { ben, sql, contributorOf, spent } = await authorAndTwoVerifiers(t)
  const reservedTo = () => (sql.prepare("select w.name as name from work_units u join workers w on w.id = u.reserved_for where u.kind = 'verify' and u.state = 'queued'").get() as { name: string } | undefined)?.name
  spent('dee') // so the first draw goes to carol
  await ben.api.worker.report.mutate({ workerId: ben.workerId, report: report(await ben.next(), 1.5) })
  const u = await ben.next()
  await ben.api.worker.report.mutate({ workerId: ben.workerId, report: report(u, 1.45, freshEdit(u.source['train.py'])) })
  const next = await ben.next()
  t.equal(reservedTo(), 'carol', 'drawn for carol, the one in credit')
  // Carol's earlier verifications of ben's are counted meanwhile (as when they are reported), and dee's credit comes back.
  sql.prepare('delete from verify_exchange where verifier = ?').run(contributorOf('dee'))
  spent('carol')
  await ben.api.worker.report.mutate({ workerId: ben.workerId, report: report(next, 1.6, freshEdit(next.source['train.py'])) })
  await ben.next() // a lease: the draw looks at the reservation again
  t.equal(reservedTo(), 'dee', 'drawn again, for dee: the scheduler would never hand it to carol now')
})

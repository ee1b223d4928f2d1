import t from 'tap'
import type { Test } from 'tap'
import type { AssignmentEvent, WorkUnit } from '@autoresearch-grid/shared'
import { eq } from 'drizzle-orm'
import { getCampaign } from '../../src/campaigns/campaigns.ts'
import { experiments } from '../../src/db/schema.ts'
import { carriedEvidenceOf } from '../../src/units/sequential-inputs.ts'
import { carriesChange } from '../../src/units/rebase-content.ts'
import { CPU, joinWorkers, report, SEED_TRAIN_PY, startCoordinator, wsClient } from '../helpers.ts'

// A rebase unit asks a worker to re-apply a rival's change on the best (units/merge.ts mergeStale),
// and any contributor's worker may take it. Nothing checked that its report was that change: under
// the sequential policies a rebase inherits its origin's evidence and skips the first-look screen,
// so Mallory reported her own change as the rebase of Ben's promising idea, and it came with Ben's
// claim and his verifiers' runs behind it; Ben's idea was never re-applied. A rebase now carries its
// origin only when its code is the origin's change on the new best, line for line
// (units/rebase-content.ts); otherwise it is judged as an original, and the idea gets another rebase.

const edit = (from: string, to: string) => SEED_TRAIN_PY.replace(from, to)

/** Ann's change merges; Ben's, promising on the seed, conflicts with it and waits for a rebase (as in rebase-veto.test.ts). */
async function rivalRebaseQueued(t: Test) {
  const c = await startCoordinator()
  t.teardown(c.close)
  await c.campaign('demo', { replications: 0, baselineRuns: 1, priorSigma: 0.01 })
  const [ann, ben, cat] = await joinWorkers(c, ['ann', 'ben', 'cat'])
  t.teardown(() => [ann, ben, cat].forEach(w => w.close()))
  await ann.api.worker.report.mutate({ workerId: ann.workerId, report: report(await ann.next(), 1.50) })
  const [ua, ub] = [await ann.next(), await ben.next()]
  const catHolds = await cat.next()
  await ann.api.worker.report.mutate({ workerId: ann.workerId, report: report(ua, 1.45, edit('DEPTH = 4', 'DEPTH = 6')) })
  await ann.api.worker.report.mutate({ workerId: ann.workerId, report: report(await ann.next(), 1.45) })
  await ann.next()
  ben.stopFeed()
  const stale = await ben.api.worker.report.mutate({ workerId: ben.workerId, report: report(ub, 1.44, edit('DEPTH = 4', 'DEPTH = 8')) })
  t.match(stale.decision, /^stale/)
  const rebases = () => c.app.db.$client.prepare("select id, state from work_units where kind = 'rebase' and target_experiment = ? order by created_at").all(stale.experimentId) as { id: string; state: string }[]
  t.equal(rebases().length, 1, 'a rebase unit is queued')
  return { c, cat, catHolds, rebases }
}

async function mallory(c: Awaited<ReturnType<typeof startCoordinator>>, t: Test) {
  const { api, close } = wsClient(c.url, c.workerToken('mallory'))
  t.teardown(close)
  const { workerId } = await api.worker.hello.mutate({ name: 'm0', hardware: CPU, fingerprints: {}, version: 't' })
  const units: WorkUnit[] = []
  const sub = api.worker.assignments.subscribe({ workerId }, { onData: (e: AssignmentEvent) => { if (e.type === 'unit') units.push(e.unit) } })
  t.teardown(() => sub.unsubscribe())
  const next = async () => { while (!units.length) await new Promise(r => setTimeout(r, 20)); return units.shift()! }
  return { api, workerId, next }
}

t.test('a rival\'s rebase reported with other code carries none of the rival\'s evidence, and the idea is re-applied by someone else', async t => {
  const { c, cat, catHolds, rebases } = await rivalRebaseQueued(t)
  const m = await mallory(c, t)
  const taken = await m.next()
  t.equal(taken.kind, 'rebase', 'mallory, idle, takes the rebase of ben\'s idea')
  // Her own change (a learning rate) beside ben's line, as the rebase of his idea.
  const hers = await m.api.worker.report.mutate({ workerId: m.workerId, report: report(taken, 1.46, edit('DEPTH = 4', 'DEPTH = 8').replace('MATRIX_LR = 0.02', 'MATRIX_LR = 0.2')) })
  const row = (id: string) => c.app.db.select().from(experiments).where(eq(experiments.id, id)).get()!
  const campaign = getCampaign(c.app, 'demo')!
  t.equal(carriedEvidenceOf(c.app.db, campaign, row(hers.experimentId)), undefined, 'her change carries none of ben\'s evidence')
  t.equal(row(hers.experimentId).carriesOrigin, false, 'it is on record as a change of its own')
  t.equal(rebases().length, 2, 'ben\'s idea gets another rebase')
  await cat.api.worker.report.mutate({ workerId: cat.workerId, report: report(catHolds, 1.52, edit('MATRIX_LR = 0.02', 'MATRIX_LR = 0.05')) })
  const again = await cat.next()
  t.equal(again.id, rebases()[1].id, 'another contributor re-applies it')
  const honest = await cat.api.worker.report.mutate({ workerId: cat.workerId, report: report(again, 1.46, edit('DEPTH = 4', 'DEPTH = 8')) })
  const catRow = row(honest.experimentId)
  t.equal(catRow.carriesOrigin, true, 'ben\'s change re-applied, the conflict resolved his way, carries it')
  t.ok(carriedEvidenceOf(c.app.db, campaign, catRow), 'with ben\'s evidence')
})

t.test('what re-applies a change: the three-way merge of its lines, a conflict resolved either way for the best\'s lines only', async t => {
  const f = (s: string) => ({ 'train.py': s })
  const base = f('a\nb\nc\n'), origin = f('a\nB\nc\n'), parent = f('a\nb2\nc\nd\n')
  t.ok(carriesChange(base, origin, parent, f('a\nB\nc\nd\n')), 'the conflict resolved the origin\'s way')
  t.ok(carriesChange(base, origin, parent, f('a\nb2\nB\nc\nd\n')), 'both sides kept')
  t.notOk(carriesChange(base, origin, parent, f('a\nb2\nc\nd\n')), 'the origin\'s line left out')
  t.notOk(carriesChange(base, origin, parent, f('B\nc\nd\n')), 'a line of the best that the origin kept removed')
  // The limit: a line the best gained since the origin's base may be left out (the other side of a conflict).
  t.ok(carriesChange(base, origin, parent, f('a\nB\nc\n')), 'a line the best gained since the origin\'s base left out')
  t.notOk(carriesChange(base, origin, parent, f('a\nB\nc\nd\nevil\n')), 'a line of its own added')
  t.ok(carriesChange(f('a\nb\n'), f('a\n'), f('a\nb\nc\n'), f('a\nc\n')), 'a deletion re-applied')
})

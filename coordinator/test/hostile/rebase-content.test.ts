import t from 'tap'
import { eq } from 'drizzle-orm'
import { getCampaign } from '../../src/campaigns/campaigns.ts'
import { experiments } from '../../src/db/schema.ts'
import { carriedEvidenceOf } from '../../src/units/sequential-inputs.ts'
import { carriesChange } from '../../src/units/rebase-content.ts'
import { report } from '../helpers.ts'
import { edit, mallory, rivalRebaseQueued } from './rival-rebase.ts'

// A rebase unit asks a worker to re-apply a rival's change on the best (units/merge.ts mergeStale),
// and any contributor's worker may take it. Nothing checked that its report was that change: under
// the sequential policies a rebase inherits its origin's evidence and skips the first-look screen,
// so Mallory reported her own change as the rebase of Ben's promising idea, and it came with Ben's
// claim and his verifiers' runs behind it; Ben's idea was never re-applied. A rebase now carries its
// origin only when its code is the origin's change on the new best, line for line
// (units/rebase-content.ts); otherwise it is judged as an original, and the idea gets another rebase.


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

import t from 'tap'
import { hypotheses } from '../../src/db/schema.ts'
import { addHypothesis, DEDUP_WINDOW } from '../../src/hypotheses/add.ts'
import { dedupKey } from '../../src/hypotheses/dedup.ts'
import { startCoordinator } from '../helpers.ts'

// A new hypothesis (a proposal, or one of the three follow-ups a report may carry) was compared with
// every hypothesis the campaign ever stored, each normalized again, in the event loop: at 5,000 in
// a campaign one took ~0.2 s, three per report, and a contributor may store 30 an hour. Now exact
// duplicates (the same words in the same order) are found at any age through the stored key, and
// near duplicates among the newest DEDUP_WINDOW, whose normalized forms are kept.

t.test('near duplicates are looked for among the newest hypotheses, exact ones among all', async t => {
  const c = await startCoordinator()
  t.teardown(c.close)
  await c.campaign('demo')
  const oldest = 'cosine learning rate schedule with a longer warmup'
  c.app.db.transaction(tx => {
    for (let i = 0; i <= DEDUP_WINDOW; i++) {
      const title = i === 0 ? oldest : `idea number ${i} about layer ${i % 17} and width ${i}`
      tx.insert(hypotheses).values({ id: `h_${String(i).padStart(5, '0')}`, campaign: 'demo', title, body: '', source: 'agent', author: 'x', priority: 0,
        status: 'tested', dedupKey: dedupKey(title), duplicateOf: null, parentExperiment: null, contributorId: null, createdAt: i + 1 } as never).run()
    }
  })
  const add = (title: string) => addHypothesis(c.app, 'demo', { title, source: 'agent' })
  t.equal(add('Cosine LR schedule with a longer warmup!').duplicateOf, 'h_00000', 'the same words, older than the window: found by its key')
  t.equal(add('a longer warmup with the cosine learning rate schedule').duplicateOf, null, `a near duplicate older than the newest ${DEDUP_WINDOW} is not looked for`)
  t.equal(add('idea number 1000 about layer 14 and the width 1000').duplicateOf, `h_0${DEDUP_WINDOW}`, 'a near duplicate of a recent one is found')
})

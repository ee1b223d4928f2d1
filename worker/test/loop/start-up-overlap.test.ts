import t from 'tap'
import { StartUpOverlap } from '../../src/loop/start-up-overlap.ts'

// Which runs of `worker join` may start up beside another run's training (loop/start-up-overlap.ts):
// the worker's own code only, and only on a card that holds two runs.

const OWN_EDIT = 'a'.repeat(64)
const RIVAL = 'b'.repeat(64)
const BEST = 'c'.repeat(64)

t.test("the worker's own researcher's explore edits and the merged best start beside training", async t => {
  const overlap = new StartUpOverlap(true)
  t.equal(overlap.overlapFor({ kind: 'explore' }, OWN_EDIT), 'training')
  t.equal(overlap.overlapFor({ kind: 'baseline' }, BEST), 'training')
})

t.test("others' unmerged code starts beside evaluation only: verifications and rebases", async t => {
  const overlap = new StartUpOverlap(true)
  t.equal(overlap.overlapFor({ kind: 'verify' }, RIVAL), 'evaluation')
  t.equal(overlap.overlapFor({ kind: 'rebase' }, RIVAL), 'evaluation')
  t.equal(overlap.overlapFor({ kind: 'rebase' }, OWN_EDIT), 'evaluation', 'a rebase carries another contributor\'s idea, whatever its hash')
})

t.test('a verification of files this worker\'s researcher wrote, byte for byte, is its own code', async t => {
  const overlap = new StartUpOverlap(true, 2)
  overlap.overlapFor({ kind: 'explore' }, OWN_EDIT)
  t.equal(overlap.overlapFor({ kind: 'verify' }, OWN_EDIT), 'training')
  overlap.overlapFor({ kind: 'explore' }, 'd'.repeat(64))
  overlap.overlapFor({ kind: 'explore' }, 'e'.repeat(64))
  t.equal(overlap.overlapFor({ kind: 'verify' }, OWN_EDIT), 'evaluation', 'only the most recent explores are remembered')
})

t.test('on a card without room for two runs, nothing starts beside training', async t => {
  const overlap = new StartUpOverlap(false)
  for (const kind of ['explore', 'baseline', 'verify', 'rebase'] as const) t.equal(overlap.overlapFor({ kind }, OWN_EDIT), 'evaluation', kind)
})

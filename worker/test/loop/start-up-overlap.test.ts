import t from 'tap'
import { StartUpOverlap } from '../../src/loop/start-up-overlap.ts'
import { cardFootprintMb, roomForTwoRuns } from '../../src/runner/lane.ts'

// Which runs of `worker join` may start up beside another run's training (loop/start-up-overlap.ts):
// the worker's own code only, and only on a card that holds two runs.

const OWN_EDIT = 'a'.repeat(64)
const RIVAL = 'b'.repeat(64)
const BEST = 'c'.repeat(64)
// nvidia-smi's memory.total of an H100 80GB and of a 48 GB card.
const H100 = 81_559
const A6000 = 49_140

t.test("the worker's own researcher's explore edits and the merged best start beside training", async t => {
  const overlap = new StartUpOverlap(H100)
  t.equal(overlap.overlapFor({ kind: 'explore' }, OWN_EDIT), 'training')
  t.equal(overlap.overlapFor({ kind: 'baseline' }, BEST), 'training')
})

t.test("others' unmerged code starts beside evaluation only: verifications and rebases", async t => {
  const overlap = new StartUpOverlap(H100)
  t.equal(overlap.overlapFor({ kind: 'verify' }, RIVAL), 'evaluation')
  t.equal(overlap.overlapFor({ kind: 'rebase' }, RIVAL), 'evaluation')
  t.equal(overlap.overlapFor({ kind: 'rebase' }, OWN_EDIT), 'evaluation', 'a rebase carries another contributor\'s idea, whatever its hash')
})

t.test('a verification of files this worker\'s researcher wrote, byte for byte, is its own code', async t => {
  const overlap = new StartUpOverlap(H100, 2)
  overlap.overlapFor({ kind: 'explore' }, OWN_EDIT)
  t.equal(overlap.overlapFor({ kind: 'verify' }, OWN_EDIT), 'training')
  overlap.overlapFor({ kind: 'explore' }, 'd'.repeat(64))
  overlap.overlapFor({ kind: 'explore' }, 'e'.repeat(64))
  t.equal(overlap.overlapFor({ kind: 'verify' }, OWN_EDIT), 'evaluation', 'only the most recent explores are remembered')
})

t.test('on a card without room for two runs, nothing starts beside training', async t => {
  const overlap = new StartUpOverlap(A6000)
  for (const kind of ['explore', 'baseline', 'verify', 'rebase'] as const) t.equal(overlap.overlapFor({ kind }, OWN_EDIT), 'evaluation', kind)
})

t.test('the room for two runs follows what the last run of the worker\'s own code held at its peak', async t => {
  // The measured pairs (runner/lane.ts): the trainer's peak_vram_mb, and what nvidia-smi saw the run hold.
  for (const [peak, held] of [[23_137, 25_517], [45_469, 50_097]]) {
    t.ok(cardFootprintMb(peak) >= held && cardFootprintMb(peak) <= held * 1.05, `a peak of ${peak} MiB: ${cardFootprintMb(peak)} MiB counted, ${held} held`)
  }
  t.equal(roomForTwoRuns(H100, null), true, 'before any run: the fixed line (64 GB)')
  t.equal(roomForTwoRuns(A6000, null), false)
  t.equal(roomForTwoRuns(H100, 23_137), true, 'DEVICE_BATCH 64: two fit 80 GB (measured: 59 GB at the peak)')
  t.equal(roomForTwoRuns(H100, 45_469), false, 'DEVICE_BATCH 128: two do not (start-ups failed for memory, measured)')
  t.equal(roomForTwoRuns(143_771, 45_469), true, 'on an H200 they do (measured: 114 GB)')
  t.equal(roomForTwoRuns(A6000, 12_000), true, 'a small model on a 48 GB card')

  const said: string[] = []
  const overlap = new StartUpOverlap(H100, 256, l => said.push(l))
  t.equal(overlap.overlapFor({ kind: 'explore' }, OWN_EDIT), 'training')
  overlap.measured({ kind: 'verify' }, RIVAL, 1)
  overlap.measured({ kind: 'rebase' }, RIVAL, 60_000)
  t.equal(overlap.overlapFor({ kind: 'baseline' }, BEST), 'training', 'a stranger\'s run, whatever peak it claims, does not move the line')
  overlap.measured({ kind: 'explore' }, OWN_EDIT, 45_469)
  t.equal(overlap.overlapFor({ kind: 'baseline' }, BEST), 'evaluation', 'its own edit grew the model past half the card: beside evaluation only')
  t.match(said.join('\n'), /^next start-ups beside evaluation only: the last run of its own code held 49\.8 GiB of the card at its peak \(79\.6 GiB\), two do not fit$/)
  overlap.measured({ kind: 'verify' }, OWN_EDIT, 23_137)
  t.equal(overlap.overlapFor({ kind: 'explore' }, 'f'.repeat(64)), 'training', 'a verification of its own edit counts too, and a smaller model turns it on again')
  t.equal(said.length, 2)
  overlap.measured({ kind: 'baseline' }, BEST, Number.NaN)
  t.equal(overlap.roomForTwo, true, 'no number: nothing learned')
  t.equal(said.length, 2, 'said only when it changes')
})

import t from 'tap'
import { decide, type CandidateSample, type ParentRun, type RatchetInput } from '../../src/ratchet/decide.ts'
import { DEFAULT_RATCHET_SETTINGS, type RatchetSettings } from '../../src/ratchet/settings.ts'
import { withoutWild } from '../../src/ratchet/sequential.ts'

// The `parallel` policy (docs/RATCHET.md, "Third round, session 13"): `pooled` with several runs
// per look, a candidate whose parent was replaced moved onto the best at its next look, and a wild
// parent run left out of the parent's mean. Class H has σ 0.01 and a parent at 1.000.
const PARALLEL: RatchetSettings = { ...DEFAULT_RATCHET_SETTINGS, policy: 'parallel' }
const POOLED: RatchetSettings = { ...DEFAULT_RATCHET_SETTINGS, policy: 'pooled' }
const run = (valBpb: number, contributorId: string): CandidateSample => ({ valBpb, workerId: `w-${contributorId}`, contributorId, trainingSeconds: 300 })

function input(samples: CandidateSample[], settings: RatchetSettings, over: Partial<RatchetInput> = {}, parentRuns: ParentRun[] = ['p', 'q', 'p', 'q'].map(contributorId => ({ valBpb: 1.0, contributorId }))): RatchetInput {
  return { candidate: { authorId: 'a', samples, linesDelta: 3 }, parentSamples: parentRuns.map(r => r.valBpb), parentRuns, sigma: 0.01, parentIsBest: true, settings, realRate: 0.1, elsewhere: [], ...over }
}

t.test('an undecided test asks for several runs at once', async t => {
  // A promising claim and one verification: not decisive yet. `pooled` keeps one run outstanding,
  // `parallel` four.
  const samples = [run(0.985, 'a'), run(0.99, 'b')]
  const pooled = decide(input(samples, POOLED))
  const parallel = decide(input(samples, PARALLEL))
  t.equal(pooled.kind, 'verify', pooled.message)
  t.equal(parallel.kind, 'verify', parallel.message)
  if (pooled.kind === 'verify' && parallel.kind === 'verify') {
    t.equal(pooled.needed, 1)
    t.equal(parallel.needed, 4)
  }
})

t.test('a candidate whose parent was replaced goes onto the best with its evidence', async t => {
  const samples = [run(0.985, 'a'), run(0.99, 'b')]
  const moved = decide(input(samples, PARALLEL, { parentIsBest: false }))
  t.equal(moved.kind, 'stale', moved.message)
  if (moved.kind === 'stale') t.ok(moved.carry && moved.carry.all.delta < 0 && moved.carry.contributorIds.includes('b'), 'carries what b measured')
  // `pooled` verifies on against the replaced parent.
  t.equal(decide(input(samples, POOLED, { parentIsBest: false })).kind, 'verify')
  // A claim nobody verified yet is not moved: its screen decides first, on its own parent.
  t.not(decide(input([run(0.985, 'a')], PARALLEL, { parentIsBest: false })).kind, 'stale')
})

t.test('a claim above the cap is not carried before others reproduce it', async t => {
  const d = decide(input([run(0.5, 'a'), run(1.0, 'b')], PARALLEL, { parentIsBest: false }))
  t.not(d.kind, 'stale', d.message)
})

t.test('one wild parent run does not make a null change look like a gain', async t => {
  // The parent's four runs: three at 1.000 and one 8σ high (a run with 4× the noise). C and its
  // verifications sit at the parent's true level: no change.
  const wild: ParentRun[] = [{ valBpb: 1.0, contributorId: 'p' }, { valBpb: 1.0, contributorId: 'q' }, { valBpb: 1.0, contributorId: 'r' }, { valBpb: 1.08, contributorId: 's' }]
  const samples = [run(1.0, 'a'), run(1.0, 'b'), run(1.0, 'c'), run(1.0, 'd'), run(1.0, 'e')]
  // `pooled` takes it at face value: Δ −2σ, its test leans to a gain and asks for more runs of a
  // null change (more runs of C cannot undo a parent mean that is off).
  const pooled = decide(input(samples, POOLED, {}, wild))
  t.equal(pooled.kind, 'verify')
  t.match(pooled.message, /log LR 4\.\d+ for a 2σ gain/)
  const parallel = decide(input(samples, PARALLEL, {}, wild))
  t.equal(parallel.kind, 'discard', parallel.message)
})

t.test('withoutWild leaves out runs far from the median, and only with 3 runs or more', async t => {
  t.same(withoutWild([1, 1, 1, 1.08], 0.01, 3), [1, 1, 1])
  t.same(withoutWild([1, 1.08], 0.01, 3), [1, 1.08])
  t.same(withoutWild([1, 1.02, 0.99], 0.01, 3), [1, 1.02, 0.99])
  t.same(withoutWild([1, 1, 1, 1.08], 0.01, 0), [1, 1, 1, 1.08], 'cutoff 0: off')
})

t.test('one wild run of the candidate counts at most 3σ', async t => {
  // b's verification is 10σ better than the parent (a run with 4× the noise); c sees nothing.
  const samples = [run(0.985, 'a'), run(0.9, 'b'), run(1.0, 'c')]
  const pooled = decide(input(samples, POOLED))
  const parallel = decide(input(samples, PARALLEL))
  const llr = (m: string) => Number(/log LR (-?[\d.]+)/.exec(m)?.[1])
  t.ok(llr(parallel.message) < llr(pooled.message) - 3, `${parallel.message} against ${pooled.message}`)
})

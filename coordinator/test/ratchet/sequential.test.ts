import t from 'tap'
import { decide, type CandidateSample, type CarriedEvidence, type Decision, type RatchetInput } from '../../src/ratchet/decide.ts'
import { boundaries, combine, DEFAULT_SEQUENTIAL, logLikelihoodRatio, parentRunsWanted, realRateOf } from '../../src/ratchet/sequential.ts'
import { carriedFrom } from '../../src/ratchet/decide-sequential.ts'
import { DEFAULT_RATCHET_SETTINGS, type RatchetSettings } from '../../src/ratchet/settings.ts'

// σ = 0.01 and a parent measured 8 times at 1.000; the sequential policy with the production
// guards (two distinct verifying contributors, the verdict without any one of them).
const SETTINGS: RatchetSettings = { ...DEFAULT_RATCHET_SETTINGS, policy: 'sequential' }
const PARENT = Array.from({ length: 8 }, () => 1.0)
/** The parent's runs, by two contributors who verify nothing. */
const PARENT_RUNS = PARENT.map((valBpb, i) => ({ valBpb, contributorId: i % 2 ? 'p' : 'q' }))
const SIGMA = 0.01
const run = (valBpb: number, contributorId: string): CandidateSample => ({ valBpb, workerId: `w-${contributorId}`, contributorId, trainingSeconds: 300 })

function input(samples: CandidateSample[], over: Partial<RatchetInput> & { carried?: CarriedEvidence } = {}): RatchetInput {
  return { candidate: { authorId: 'a', samples, linesDelta: 3, carried: over.carried }, parentSamples: PARENT, sigma: SIGMA, parentIsBest: true, settings: SETTINGS, realRate: 0.2, ...over }
}
const kind = (d: Decision) => d.kind

t.test('inverse-variance combination weights the surer estimate more', async t => {
  const c = combine({ delta: -0.02, variance: 1e-4 }, { delta: 0, variance: 3e-4 })
  t.ok(Math.abs(c.delta - -0.015) < 1e-12)
  t.ok(Math.abs(c.variance - 0.75e-4) < 1e-12)
})

t.test('a rarer rate of real gains raises the bar to merge, not the bar to discard', async t => {
  const young = boundaries(realRateOf(30, 100), DEFAULT_SEQUENTIAL)
  const mature = boundaries(realRateOf(1, 100), DEFAULT_SEQUENTIAL)
  t.ok(mature.upper > young.upper + 2, `${mature.upper} vs ${young.upper}`)
  t.ok(mature.alpha < young.alpha / 5)
  t.ok(Math.abs(mature.lower - young.lower) < 0.05)
})

t.test('the log likelihood ratio favours the gain when Δ is below half of it', async t => {
  t.ok(logLikelihoodRatio({ delta: -0.011, variance: 1e-4 }, 0.02) > 0)
  t.ok(logLikelihoodRatio({ delta: -0.009, variance: 1e-4 }, 0.02) < 0)
})

t.test('a claim clearly worse than its parent is discarded at the first look', async t => {
  const d = decide(input([run(1.01, 'a')]))
  t.equal(d.kind, 'discard', d.message)
  t.equal(d.kind === 'discard' && d.reason, 'not-promising')
})

t.test('a promising claim asks for runs by two other contributors at once', async t => {
  const d = decide(input([run(0.985, 'a')]))
  t.equal(d.kind, 'verify', d.message)
  if (d.kind === 'verify') {
    t.equal(d.needed, 2)
    t.same(d.excludeContributorIds, ['a'])
  }
})

t.test('a clear gain merges as soon as two other contributors show it', async t => {
  const d = decide(input([run(0.96, 'a'), run(0.962, 'b'), run(0.958, 'c')]))
  t.equal(d.kind, 'merge', d.message)
})

t.test('a lucky null stops after its verifications say no', async t => {
  const d = decide(input([run(0.985, 'a'), run(1.004, 'b'), run(0.998, 'c')]))
  t.equal(d.kind, 'discard', d.message)
})

t.test('a forged claim and a friend\'s forged verification do not carry a merge', async t => {
  // The friend (f) reports what the author (a) claimed; the honest run (h) sees no change.
  const d = decide(input([run(0.95, 'a'), run(0.95, 'f'), run(1.0, 'h')]))
  t.not(d.kind, 'merge', d.message)
})

t.test('a win on a parent that is no longer the best goes stale with its evidence', async t => {
  const d = decide(input([run(0.96, 'a'), run(0.962, 'b'), run(0.958, 'c')], { parentIsBest: false }))
  t.equal(d.kind, 'stale', d.message)
  if (d.kind === 'stale') {
    t.ok(d.carry && d.carry.all.delta < -0.03)
    t.same(d.carry?.contributorIds, ['b', 'c'])
  }
})

t.test('an undecided candidate on a replaced parent keeps verifying there', async t => {
  t.equal(kind(decide(input([run(0.985, 'a')], { parentIsBest: false }))), 'verify')
})

t.test('a change carried with strong evidence needs one confirming run of the combination', async t => {
  const carried: CarriedEvidence = { all: { delta: -0.04, variance: 0.3e-4 }, independent: { delta: -0.04, variance: 0.45e-4 }, contributorIds: ['b', 'c'], parentContributorIds: [] }
  const start = decide(input([], { carried }))
  t.equal(start.kind, 'verify', start.message)
  t.equal(start.kind === 'verify' && start.needed, 1)
  t.equal(kind(decide(input([run(0.962, 'd')], { carried }))), 'merge')
  // The combination that lost the gain does not merge on the old evidence alone.
  t.not(kind(decide(input([run(1.01, 'd'), run(1.008, 'e')], { carried }))), 'merge')
})

t.test('carryCheckZ: carried evidence the runs on the new parent contradict is left out, and the change is judged on what it does now', async t => {
  const carried: CarriedEvidence = { all: { delta: -0.04, variance: 0.3e-4 }, independent: { delta: -0.04, variance: 0.3e-4 }, contributorIds: ['b', 'c'], parentContributorIds: [] }
  // Three confirming runs of the combination by three contributors: no gain here at all.
  const runs = [run(1.002, 'd'), run(0.999, 'e'), run(1.0, 'f')]
  const weighed = decide(input(runs, { carried }))
  t.equal(weighed.kind, 'merge', `without the check the old evidence outweighs them: ${weighed.message}`)
  const checked = decide(input(runs, { carried, settings: { ...SETTINGS, sequential: { carryCheckZ: 2 } } }))
  t.equal(checked.kind, 'discard', checked.message)
  t.equal(decide(input(runs, { carried, settings: { ...SETTINGS, policy: 'parallel' } })).kind, 'discard', 'parallel checks')
  // Runs that agree with the carried evidence keep it: one confirming run still merges.
  t.equal(kind(decide(input([run(0.962, 'd')], { carried, settings: { ...SETTINGS, sequential: { carryCheckZ: 2 } } }))), 'merge')
  // Runs better than the carried evidence never drop it (the check only ever makes a merge harder).
  const better = carriedFrom([run(0.9, 'd')], PARENT_RUNS, SIGMA, new Set(['a']), carried, { ...DEFAULT_SEQUENTIAL, carryCheckZ: 2 })!
  t.ok(better.all.variance < 0.3e-4 / 0.5, 'combined with the carried evidence')
})

t.test("carried evidence is left out of the verdict without one contributor who ran the old parent: a sybil's second token", async t => {
  // m2, the author's second token, inflated the old parent's baselines, so the origin's honest
  // verification (c) looked like a gain there; on the new best m2 verifies the change far better,
  // d runs it as its parent. Without m2 nothing shows a gain: the carried estimate rests on m2's
  // baselines, so it goes out with m2's runs.
  const forged: CarriedEvidence = { all: { delta: -0.04, variance: 0.3e-4 }, independent: { delta: -0.04, variance: 0.45e-4 }, contributorIds: ['c'], parentContributorIds: ['m2', 'p'] }
  const honestParent = PARENT_RUNS
  const runs = [run(0.96, 'm2'), run(0.96, 'm2'), run(1.0, 'd'), run(1.0, 'd')]
  const d = decide(input(runs, { carried: forged, parentRuns: honestParent }))
  t.not(d.kind, 'merge', d.message)
  // The same evidence carried from an old parent only honest contributors ran merges.
  const honest: CarriedEvidence = { ...forged, parentContributorIds: ['p', 'q'] }
  t.equal(decide(input(runs, { carried: honest, parentRuns: honestParent })).kind, 'merge', 'the guard is what stops it')
  // Where the caller recomputes the carried evidence without one contributor (the coordinator and
  // the grid do), the verdict without m2 uses what is left: here nothing shows a gain.
  const recomputed = (k: string): CarriedEvidence | undefined => (k === 'm2' ? { ...forged, independent: { delta: 0, variance: 0.45e-4 }, parentContributorIds: ['p'] } : forged)
  const withRecompute = (carried: CarriedEvidence, without: (k: string) => CarriedEvidence | undefined) =>
    decide({ ...input(runs, { carried, parentRuns: honestParent }), candidate: { authorId: 'a', samples: runs, linesDelta: 3, carried, carriedWithout: without } })
  t.not(withRecompute(forged, recomputed).kind, 'merge', 'recomputed without m2: no gain left, no merge')
  t.equal(withRecompute(forged, () => forged).kind, 'merge', 'a recomputation that keeps the gain lets it merge: the recomputed evidence is what counts')
})

t.test('the fixed policy is unchanged when no policy is named', async t => {
  const d = decide({ ...input([run(0.96, 'a'), run(0.962, 'b'), run(0.958, 'c')]), settings: { ...SETTINGS, policy: undefined } })
  t.equal(d.kind, 'verify', d.message) // the fixed rule wants 3 verifications
})

t.test('the first look screens the claim: a claim within a screen of its parent earns no verification', async t => {
  // 0.6σ better than a parent measured 8 times: Wald's lower boundary alone would verify it.
  const d = decide(input([run(0.994, 'a')]))
  t.equal(d.kind, 'discard', d.message)
  t.equal(d.kind === 'discard' && d.reason, 'not-promising')
})

t.test('a carried candidate is not screened again at its first look: its evidence came with it', async t => {
  const carried: CarriedEvidence = { all: { delta: -0.04, variance: 0.3e-4 }, independent: { delta: -0.04, variance: 0.5e-4 }, contributorIds: ['b', 'c'], parentContributorIds: [] }
  t.equal(kind(decide(input([run(0.994, 'a')], { carried }))), 'verify')
})

t.test('the observed rate of real gains can be corrected for the share of gains the policy finds', async t => {
  t.ok(Math.abs(realRateOf(20, 190, { ...DEFAULT_SEQUENTIAL, expectedPower: 0.5 }) - 0.21) < 1e-12)
  t.ok(Math.abs(realRateOf(20, 190) - 0.105) < 1e-12, 'uncorrected by default')
})

t.test('evidence handed on from an origin combines its runs with what it carried, and names its verifiers', async t => {
  const runs = [run(0.97, 'a'), run(0.97, 'b'), run(0.97, 'c')]
  const first = carriedFrom(runs, PARENT_RUNS, SIGMA, new Set(['a']), undefined)!
  t.ok(Math.abs(first.all.delta - -0.03) < 1e-12)
  t.ok(Math.abs(first.all.variance - 1e-4 * (1 / 3 + 1 / 8)) < 1e-12)
  t.same(first.contributorIds, ['b', 'c'])
  const second = carriedFrom([run(0.98, 'a'), run(0.98, 'd')], PARENT_RUNS, SIGMA, new Set(['a']), first)!
  t.ok(second.all.delta < -0.02 && second.all.delta > -0.03, 'between the two estimates')
  t.ok(second.all.variance < first.all.variance / 0.5, 'surer than the carried evidence alone')
  t.same(second.contributorIds, ['b', 'c', 'd'])
  t.equal(carriedFrom([], PARENT_RUNS, SIGMA, new Set(['a']), first), first, 'no runs: passed on unchanged')
})

t.test('even where the author may verify, one verification run does not merge: heavy tails need a second', async t => {
  const self = { ...SETTINGS, allowSelfVerification: true }
  const d = decide(input([run(0.95, 'a'), run(0.95, 'a')], { settings: self }))
  t.equal(d.kind, 'verify', d.message)
  t.equal(kind(decide(input([run(0.95, 'a'), run(0.95, 'a'), run(0.952, 'a')], { settings: self }))), 'merge')
})

t.test('a win that rests on one verifier asks its next run of someone else', async t => {
  // b's two runs show the gain, c's does not: without b the win is gone, so b may not run the next one.
  const d = decide(input([run(0.96, 'a'), run(0.96, 'b'), run(0.96, 'b'), run(1.0, 'c')]))
  t.equal(d.kind, 'verify', d.message)
  if (d.kind === 'verify') t.same([...d.excludeContributorIds].sort(), ['a', 'b'])
})

t.test('parentOnDemand: a candidate whose parent has fewer runs than it will asks for parent runs alongside', async t => {
  const parentRuns = [1.0, 1.0].map((valBpb, i) => ({ valBpb, contributorId: `p${i}` }))
  const few = { parentSamples: parentRuns.map(r => r.valBpb), parentRuns }
  const on = decide(input([run(0.985, 'a')], { ...few, settings: { ...SETTINGS, sequential: { parentOnDemand: true } } }))
  t.equal(on.kind, 'verify', on.message)
  // 1 run of C and 2 more asked for: 3 against the parent's 2, so 1 parent run.
  t.equal(on.kind === 'verify' && on.parentRuns, 1)
  const off = decide(input([run(0.985, 'a')], few))
  t.equal(off.kind === 'verify' && off.parentRuns, undefined, 'off by default')
  // The parent has 8 runs already: none wanted.
  const enough = decide(input([run(0.985, 'a')], { settings: { ...SETTINGS, sequential: { parentOnDemand: true } } }))
  t.equal(enough.kind === 'verify' && enough.parentRuns, undefined)
})

t.test('parentRunsWanted: as many as the candidate will have, never more than the runs asked for', async t => {
  t.equal(parentRunsWanted(1, 4, 2), 0)
  t.equal(parentRunsWanted(4, 4, 2), 2)
  t.equal(parentRunsWanted(5, 4, 1), 1)
  t.equal(parentRunsWanted(9, 4, 3), 3)
})

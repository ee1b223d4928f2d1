import t from 'tap'
import { decide, type CandidateSample, type Decision, type RatchetInput } from '../../src/ratchet/decide.ts'
import type { RatchetSettings } from '../../src/ratchet/settings.ts'

// The rule of DESIGN §7 with round numbers: σ = 0.01, a parent measured 4 times at 1.000, so for
// one candidate run the threshold is 2·0.01·√(1/1 + 1/4) = 0.02236 and for 3 runs 0.01528.
const SETTINGS: RatchetSettings = {
  minDelta: 0.001,
  z: 2,
  replications: 2,
  maxImprovement: 0.1,
  budgetSeconds: 300,
  budgetTolerance: 0.1,
}
const PARENT = [1.0, 1.0, 1.0, 1.0]
const SIGMA = 0.01
const AUTHOR = 'w-author'

// Each worker is its own contributor unless a test says otherwise (`sibling`: another worker of the author's contributor).
const run = (valBpb: number, workerId = AUTHOR, trainingSeconds = 300, contributorId = workerId): CandidateSample => ({ valBpb, workerId, contributorId, trainingSeconds })

function input(samples: CandidateSample[], over: Partial<Omit<RatchetInput, 'candidate' | 'settings'>> & { linesDelta?: number; settings?: Partial<RatchetSettings> } = {}): RatchetInput {
  return {
    candidate: { authorId: AUTHOR, samples, linesDelta: over.linesDelta ?? 4 },
    parentSamples: over.parentSamples ?? PARENT,
    sigma: over.sigma ?? SIGMA,
    parentIsBest: over.parentIsBest ?? true,
    settings: { ...SETTINGS, ...over.settings },
  }
}

/** The assertions the helpers below use; every test's `t` has them. */
type Asserts = Pick<typeof t, 'equal' | 'ok'>

/** Asserts the decision's kind and narrows its type for the assertions that follow. */
function expectKind<K extends Decision['kind']>(t: Asserts, d: Decision, kind: K): Extract<Decision, { kind: K }> {
  t.equal(d.kind, kind, d.message)
  return d as Extract<Decision, { kind: K }>
}

const close = (t: Asserts, actual: number, expected: number, what: string) => t.ok(Math.abs(actual - expected) < 1e-12, `${what}: ${actual} ≈ ${expected}`)

t.test('sanity', async t => {
  t.test('a NaN val_bpb rejects the candidate', async t => {
    const d = expectKind(t, decide(input([run(NaN)])), 'reject')
    t.equal(d.reason, 'non-finite-metric')
    t.equal(d.workerId, AUTHOR)
  })

  t.test('an infinite val_bpb rejects the candidate', async t => {
    t.equal(expectKind(t, decide(input([run(Infinity)])), 'reject').reason, 'non-finite-metric')
  })

  t.test("a verifier's non-finite run rejects the candidate too: the code diverges on some runs", async t => {
    const d = expectKind(t, decide(input([run(0.97), run(NaN, 'w-other')])), 'reject')
    t.equal(d.reason, 'non-finite-metric')
    t.equal(d.workerId, 'w-other')
  })

  t.test('a zero val_bpb rejects the candidate', async t => {
    t.equal(expectKind(t, decide(input([run(0)])), 'reject').reason, 'non-positive-metric')
  })

  t.test('a negative val_bpb rejects the candidate', async t => {
    t.equal(expectKind(t, decide(input([run(-0.5)])), 'reject').reason, 'non-positive-metric')
  })

  t.test('training longer than budget·(1 + tolerance) rejects the candidate', async t => {
    t.equal(expectKind(t, decide(input([run(0.9, AUTHOR, 330.5)])), 'reject').reason, 'out-of-budget')
  })

  t.test('training shorter than budget·(1 − tolerance) rejects the candidate', async t => {
    t.equal(expectKind(t, decide(input([run(0.9, AUTHOR, 269.5)])), 'reject').reason, 'out-of-budget')
  })

  t.test('training exactly at either edge of the tolerance is within budget', async t => {
    t.not(decide(input([run(0.95, AUTHOR, 330)])).kind, 'reject')
    t.not(decide(input([run(0.95, AUTHOR, 270)])).kind, 'reject')
  })

  t.test('a tiny budget gets an absolute slack: 2 s measured as 2.6 s is within it, as is 6.9 s; 7.5 s is not', async t => {
    const tiny = { budgetSeconds: 2, budgetTolerance: 0.25 }
    t.not(decide(input([run(0.95, AUTHOR, 2.6)], { settings: tiny })).kind, 'reject', '2.6 s: 30 % over, but within the 5 s slack')
    t.not(decide(input([run(0.95, AUTHOR, 6.9)], { settings: tiny })).kind, 'reject')
    const d = expectKind(t, decide(input([run(0.95, AUTHOR, 7.5)], { settings: tiny })), 'reject')
    t.equal(d.reason, 'out-of-budget')
    t.match(d.message, /trained 7\.5s, outside the 2s budget ±5s/)
  })

  t.test('the slack is a setting, and the relative tolerance rules where it allows more', async t => {
    t.equal(expectKind(t, decide(input([run(0.95, AUTHOR, 3.6)], { settings: { budgetSeconds: 2, budgetTolerance: 0.25, budgetSlackSeconds: 1 } })), 'reject').reason, 'out-of-budget')
    t.not(decide(input([run(0.95, AUTHOR, 2.9)], { settings: { budgetSeconds: 2, budgetTolerance: 0.25, budgetSlackSeconds: 1 } })).kind, 'reject')
    t.match(decide(input([run(0.95, AUTHOR, 340)])).message, /±30s/, 'a 300 s budget at 10 %: 30 s, more than the slack')
  })

  t.test('a non-finite training time rejects the candidate', async t => {
    t.equal(expectKind(t, decide(input([run(0.95, AUTHOR, NaN)])), 'reject').reason, 'out-of-budget')
  })

  t.test('sanity comes before everything else, a stale parent included', async t => {
    t.equal(decide(input([run(NaN)], { parentIsBest: false })).kind, 'reject')
  })
})

t.test('missing data', async t => {
  t.test('a candidate waits while its parent has no baseline on the class', async t => {
    expectKind(t, decide(input([run(0.9)], { parentSamples: [] })), 'await-baseline')
  })

  t.test('an unmeasured commit (a merge made by the coordinator) asks for verification runs', async t => {
    const d = expectKind(t, decide(input([])), 'verify')
    t.equal(d.reason, 'unmeasured')
    t.equal(d.needed, 2)
    t.same(d.excludeContributorIds, [AUTHOR])
  })

  t.test('an unmeasured commit needs one run even when no replications are required', async t => {
    t.equal(expectKind(t, decide(input([], { settings: { replications: 0 } })), 'verify').needed, 1)
  })

  t.test('an unmeasured commit whose parent is no longer the best is stale', async t => {
    expectKind(t, decide(input([], { parentIsBest: false })), 'stale')
  })

  t.test('a merged commit measured only by other workers is judged on their runs', async t => {
    const d = expectKind(t, decide(input([run(0.95, 'w-b'), run(0.96, 'w-c')])), 'merge')
    t.equal(d.evidence.nC, 2)
    t.same(d.verifierIds, ['w-b', 'w-c'])
  })
})

t.test('the screen: Δ = mean(C) − mean(P), threshold = max(minDelta, z·σ·√(1/n_C + 1/n_P))', async t => {
  t.test('a candidate no better than the threshold is discarded as not promising', async t => {
    const d = expectKind(t, decide(input([run(0.98)])), 'discard')
    t.equal(d.reason, 'not-promising')
    close(t, d.evidence.delta, -0.02, 'Δ')
    close(t, d.evidence.threshold, 2 * 0.01 * Math.sqrt(1 + 1 / 4), 'threshold')
    t.equal(d.evidence.nC, 1)
    t.equal(d.evidence.nP, 4)
    t.equal(d.evidence.sigma, SIGMA)
  })

  t.test('a candidate beyond the threshold is promising', async t => {
    t.equal(decide(input([run(0.977)])).kind, 'verify')
  })

  t.test('Δ exactly at −threshold is promising (discard only when Δ > −threshold)', async t => {
    // σ = 0 leaves minDelta as the threshold; 0.75 − 1 = −0.25 is exact in binary.
    const settings = { minDelta: 0.25 }
    t.equal(decide(input([run(0.75)], { sigma: 0, settings })).kind, 'verify')
    t.equal(decide(input([run(0.75 + 2 ** -40)], { sigma: 0, settings })).kind, 'discard')
  })

  t.test('the threshold is minDelta when the noise term is smaller', async t => {
    const d = expectKind(t, decide(input([run(0.9995)], { sigma: 0.0001 })), 'discard')
    t.equal(d.evidence.threshold, SETTINGS.minDelta)
  })

  t.test('the threshold shrinks as the parent is measured more often', async t => {
    const few = expectKind(t, decide(input([run(0.99)], { parentSamples: [1, 1] })), 'discard')
    const many = expectKind(t, decide(input([run(0.99)], { parentSamples: Array(16).fill(1) })), 'discard')
    t.ok(many.evidence.threshold < few.evidence.threshold)
  })

  t.test('a worse candidate is discarded', async t => {
    t.equal(expectKind(t, decide(input([run(1.05)])), 'discard').reason, 'not-promising')
  })

  t.test('the parent mean is the mean of all its samples on the class', async t => {
    const d = expectKind(t, decide(input([run(1.0)], { parentSamples: [0.99, 1.01, 1.03] })), 'discard')
    close(t, d.evidence.parentMean, 1.01, 'mean(P)')
  })

  t.test('with screenZ the screen is more lenient than the verdict', async t => {
    // Δ = −0.015: short of 2σ·√(5/4) = 0.0224, past 1σ·√(5/4) = 0.0112.
    t.equal(decide(input([run(0.985)])).kind, 'discard')
    t.equal(decide(input([run(0.985)], { settings: { screenZ: 1 } })).kind, 'verify')
  })
})

t.test('verification', async t => {
  t.test('a promising candidate needs `replications` runs by workers other than its author', async t => {
    const d = expectKind(t, decide(input([run(0.97)])), 'verify')
    t.equal(d.reason, 'promising')
    t.equal(d.needed, 2)
    t.same(d.excludeContributorIds, [AUTHOR])
  })

  t.test("the author's own re-runs do not count as verifications", async t => {
    t.equal(expectKind(t, decide(input([run(0.97), run(0.97), run(0.97)])), 'verify').needed, 2)
  })

  t.test('each verification by another worker counts down what is needed', async t => {
    t.equal(expectKind(t, decide(input([run(0.97), run(0.97, 'w-b')])), 'verify').needed, 1)
  })

  t.test('there is no early stop: a poor first verification still waits for the rest', async t => {
    t.equal(decide(input([run(0.97), run(1.01, 'w-b')])).kind, 'verify')
  })

  t.test('with no replications required, a promising candidate merges on its own runs', async t => {
    const d = expectKind(t, decide(input([run(0.97)], { settings: { replications: 0 } })), 'merge')
    t.same(d.verifierIds, [])
  })

  t.test("another worker of the author's contributor is no verifier: independence is by contributor", async t => {
    const sibling = (v: number, w = 'w-sibling') => run(v, w, 300, AUTHOR)
    const d = expectKind(t, decide(input([run(0.97), sibling(0.97), sibling(0.968, 'w-sibling-2')])), 'verify')
    t.equal(d.needed, 2, 'two sibling runs count for nothing')
    t.same(d.excludeContributorIds, [AUTHOR])
    const merged = expectKind(t, decide(input([run(0.97), sibling(0.97), run(0.965, 'w-b'), run(0.968, 'w-c')])), 'merge')
    t.same(merged.verifierIds, ['w-b', 'w-c'], "the sibling is not named a verifier")
  })

  t.test("a claim above the cap re-run only by the author's other worker is not reproduced", async t => {
    const d = expectKind(t, decide(input([run(0.8), run(0.8, 'w-sibling', 300, AUTHOR)], { settings: { replications: 0 } })), 'verify')
    t.equal(d.reason, 'above-cap')
    t.equal(d.needed, 1)
  })

  t.test("with self-verification allowed, the author's other workers may verify too", async t => {
    const settings = { allowSelfVerification: true }
    const d = expectKind(t, decide(input([run(0.97), run(0.975, 'w-sibling', 300, AUTHOR), run(0.968, 'w-sibling-2', 300, AUTHOR)], { settings })), 'merge')
    t.same(d.verifierIds, [])
  })

  t.test('with self-verification allowed, the author may verify its own candidate', async t => {
    const settings = { allowSelfVerification: true }
    const waiting = expectKind(t, decide(input([run(0.97)], { settings })), 'verify')
    t.same(waiting.excludeContributorIds, [])
    const d = expectKind(t, decide(input([run(0.97), run(0.975), run(0.968)], { settings })), 'merge')
    t.same(d.verifierIds, [])
  })
})

t.test('the verdict', async t => {
  t.test('with the verifications in and the rule holding on all samples, the candidate merges', async t => {
    const samples = [run(0.97), run(0.975, 'w-c'), run(0.98, 'w-b')]
    const d = expectKind(t, decide(input(samples)), 'merge')
    t.equal(d.simplification, false)
    close(t, d.evidence.delta, 0.975 - 1, 'Δ')
    close(t, d.evidence.threshold, 2 * 0.01 * Math.sqrt(1 / 3 + 1 / 4), 'threshold')
    t.equal(d.evidence.nC, 3)
    t.equal(d.evidence.nP, 4)
    t.equal(d.evidence.sigma, SIGMA)
    t.equal(d.evidence.samplesUsed, 'all')
    t.same(d.samples, samples)
    t.same(d.verifierIds, ['w-b', 'w-c'])
  })

  t.test('verifications that drag the mean past −threshold discard it as not confirmed', async t => {
    t.equal(expectKind(t, decide(input([run(0.97), run(0.995, 'w-b'), run(1.0, 'w-c')])), 'discard').reason, 'not-confirmed')
  })

  t.test("the verdict uses z even when the screen used screenZ", async t => {
    // Mean Δ −0.0117 is past 1σ-threshold 0.0076 but short of the 2σ one, 0.0153.
    const samples = [run(0.985), run(0.99, 'w-b'), run(0.99, 'w-c')]
    t.equal(expectKind(t, decide(input(samples, { settings: { screenZ: 1 } })), 'discard').reason, 'not-confirmed')
  })

  t.test("when other workers' runs see no gain at all, the candidate is not reproduced", async t => {
    // A lucky (or inflated) author run carries the mean; the two independent runs see nothing.
    const samples = [run(0.92), run(1.0, 'w-b'), run(1.0, 'w-c')]
    const d = expectKind(t, decide(input(samples)), 'discard')
    t.equal(d.reason, 'not-reproduced')
  })

  t.test("other workers' runs alone must clear the screen's threshold, not merely beat the parent", async t => {
    // All three: Δ −0.03, past 0.0153. The two independent runs alone: Δ −0.01, short of
    // 2·0.01·√(1/2 + 1/4) = 0.0173.
    const samples = [run(0.93), run(0.99, 'w-b'), run(0.99, 'w-c')]
    t.equal(expectKind(t, decide(input(samples)), 'discard').reason, 'not-reproduced')
  })

  t.test('a verifier that ran twice counts twice but is listed once', async t => {
    const d = expectKind(t, decide(input([run(0.97), run(0.97, 'w-b'), run(0.97, 'w-b')])), 'merge')
    t.same(d.verifierIds, ['w-b'])
  })
})

t.test('simplification wins', async t => {
  t.test('a change that deletes code and is within +minDelta is verified as a simplification', async t => {
    const d = expectKind(t, decide(input([run(1.0005)], { linesDelta: -12 })), 'verify')
    t.equal(d.reason, 'simplification')
  })

  t.test('a verified simplification merges, flagged, once its runs show it no worse than +minDelta', async t => {
    // σ 0.001: the other workers' Δ −0.00025 plus one standard error (0.001·√(1/2 + 1/4)) is +0.00062.
    const d = expectKind(t, decide(input([run(1.0005), run(0.9995, 'w-b'), run(1.0, 'w-c')], { linesDelta: -12, sigma: 0.001 })), 'merge')
    t.equal(d.simplification, true)
  })

  t.test('a simplification within +minDelta on the point estimate, but not by a standard error, is discarded and says why', async t => {
    // σ 0.01: the same runs' bound is −0.00025 + 0.00866 = +0.00841, above +minDelta.
    const d = expectKind(t, decide(input([run(1.0005), run(0.9995, 'w-b'), run(1.0, 'w-c')], { linesDelta: -12 })), 'discard')
    t.equal(d.reason, 'not-reproduced')
    t.match(d.message, /simplification must be shown no worse than the parent: on the other contributors' runs, Δ -0\.000250 plus 1 standard error\(s\) is \+0\.008410, needed ≤ \+0\.001000/)
  })

  t.test('simplificationZ 0 judges on the point estimate (the rule before the bound)', async t => {
    const d = expectKind(t, decide(input([run(1.0005), run(0.9995, 'w-b'), run(1.0, 'w-c')], { linesDelta: -12, settings: { simplificationZ: 0 } })), 'merge')
    t.equal(d.simplification, true)
  })

  t.test("a friend's low verification cannot carry a simplification: the bound must hold without any one contributor", async t => {
    // σ 0.001, two contributors required. With w-friend's 0.998 the others' bound is −0.00013 +
    // 0.001·√(1/3 + 1/4) = +0.00063, inside minDelta; w-b's runs alone are within it on the point
    // estimate (Δ +0.0008, what merged before the bound) but not by a standard error (+0.0017).
    const samples = [run(0.999), run(0.998, 'w-friend'), run(1.0008, 'w-b'), run(1.0008, 'w-b')]
    const d = expectKind(t, decide(input(samples, { linesDelta: -12, sigma: 0.001, settings: { minVerifierContributors: 2 } })), 'verify')
    t.equal(d.reason, 'simplification')
  })

  t.test('a negative simplificationZ is a bug in the settings', async t => {
    t.throws(() => decide(input([run(1.0)], { linesDelta: -12, settings: { simplificationZ: -1 } })), /simplificationZ must be ≥ 0/)
  })

  t.test('a change that deletes code but is worse than +minDelta is discarded', async t => {
    t.equal(decide(input([run(1.0015)], { linesDelta: -12 })).kind, 'discard')
  })

  t.test('a change that adds code and is only within noise is discarded', async t => {
    t.equal(decide(input([run(1.0005)], { linesDelta: 3 })).kind, 'discard')
  })

  t.test('a change that leaves the line count alone is not a simplification', async t => {
    t.equal(decide(input([run(1.0)], { linesDelta: 0 })).kind, 'discard')
  })

  t.test("a simplification whose verifiers see it worse than +minDelta is not reproduced", async t => {
    // All three together are within +minDelta, but the other workers' runs alone are not.
    const samples = [run(0.996), run(1.0015, 'w-b'), run(1.0015, 'w-c')]
    t.equal(expectKind(t, decide(input(samples, { linesDelta: -12 })), 'discard').reason, 'not-reproduced')
  })

  t.test('a real improvement that also deletes code merges as an improvement', async t => {
    const d = expectKind(t, decide(input([run(0.97), run(0.97, 'w-b'), run(0.97, 'w-c')], { linesDelta: -12 })), 'merge')
    t.equal(d.simplification, false)
  })
})

t.test('the improvement cap', async t => {
  t.test('a claim above the cap asks other workers to reproduce it', async t => {
    const d = expectKind(t, decide(input([run(0.8)])), 'verify')
    t.equal(d.reason, 'above-cap')
    t.equal(d.needed, 2)
    t.same(d.excludeContributorIds, [AUTHOR])
  })

  t.test('a claim above the cap needs another worker even when no replications are required', async t => {
    const d = expectKind(t, decide(input([run(0.8)], { settings: { replications: 0 } })), 'verify')
    t.equal(d.needed, 1)
  })

  t.test('a claim above the cap cannot be verified by its author, even with self-verification allowed', async t => {
    const samples = Array.from({ length: 6 }, () => run(0.8))
    const d = expectKind(t, decide(input(samples, { settings: { allowSelfVerification: true } })), 'verify')
    t.equal(d.reason, 'above-cap')
    t.same(d.excludeContributorIds, [AUTHOR])
  })

  t.test('a forged huge improvement that other workers do not see is rejected, not just discarded', async t => {
    const d = expectKind(t, decide(input([run(0.5), run(1.001, 'w-b'), run(0.999, 'w-c')])), 'reject')
    t.equal(d.reason, 'unreproduced-improvement')
    t.equal(d.evidence?.samplesUsed, 'independent')
  })

  t.test("the forged number does not count toward the verdict even when it would carry the mean", async t => {
    // With the author's 0.5 the mean would be an improvement of 0.16; without it there is none.
    const samples = [run(0.5), run(0.995, 'w-b'), run(0.99, 'w-c')]
    t.equal(decide(input(samples)).kind, 'reject')
  })

  t.test('an improvement above the cap that other workers reproduce merges, judged on their runs', async t => {
    const d = expectKind(t, decide(input([run(0.8), run(0.85, 'w-b'), run(0.86, 'w-c')])), 'merge')
    t.equal(d.evidence.samplesUsed, 'independent')
    t.equal(d.evidence.nC, 2)
    close(t, d.evidence.candidateMean, 0.855, 'mean of the independent runs')
  })

  t.test('an improvement exactly at the cap is not above it', async t => {
    // 0.875 − 1 = −0.125 exactly; the cap is 0.125.
    t.equal(expectKind(t, decide(input([run(0.875)], { settings: { maxImprovement: 0.125 } })), 'verify').reason, 'promising')
  })
})

t.test('a parent that is no longer the best', async t => {
  t.test('a promising candidate is stale: its change must be merged onto the new best', async t => {
    const d = expectKind(t, decide(input([run(0.97)], { parentIsBest: false })), 'stale')
    t.equal(d.simplification, false)
    close(t, d.evidence!.delta, -0.03, 'Δ')
  })

  t.test('a fully verified candidate is still stale, never merged onto an old best', async t => {
    t.equal(decide(input([run(0.97), run(0.97, 'w-b'), run(0.97, 'w-c')], { parentIsBest: false })).kind, 'stale')
  })

  t.test('a promising simplification is stale, flagged', async t => {
    t.equal(expectKind(t, decide(input([run(1.0)], { parentIsBest: false, linesDelta: -3 })), 'stale').simplification, true)
  })

  t.test('a candidate that is not promising is discarded, not rebased', async t => {
    t.equal(decide(input([run(0.995)], { parentIsBest: false })).kind, 'discard')
  })
})

t.test('inputs', async t => {
  t.test('the decision is a pure function of its input: same answer twice, input untouched', async t => {
    const i = input([run(0.97), run(0.975, 'w-b')])
    const frozen = JSON.stringify(i)
    t.same(decide(i), decide(i))
    t.equal(JSON.stringify(i), frozen)
  })

  t.test('a negative or non-finite σ is a bug and throws', async t => {
    t.throws(() => decide(input([run(0.97)], { sigma: -0.01 })), RangeError)
    t.throws(() => decide(input([run(0.97)], { sigma: NaN })), RangeError)
  })

  t.test('σ = 0 (bit-exact reruns) leaves minDelta as the threshold', async t => {
    const d = expectKind(t, decide(input([run(0.998)], { sigma: 0 })), 'verify')
    t.equal(d.evidence?.threshold, SETTINGS.minDelta)
  })

  t.test('settings out of range are a bug and throw', async t => {
    t.throws(() => decide(input([run(0.97)], { settings: { replications: 1.5 } })), RangeError)
    t.throws(() => decide(input([run(0.97)], { settings: { z: -1 } })), RangeError)
    t.throws(() => decide(input([run(0.97)], { settings: { budgetTolerance: 1 } })), RangeError)
    t.throws(() => decide(input([run(0.97)], { settings: { maxImprovement: 0 } })), RangeError)
  })

  t.test('a parent sample that is not a positive number is a bug and throws', async t => {
    t.throws(() => decide(input([run(0.97)], { parentSamples: [1, NaN] })), RangeError)
  })
})

import t from 'tap'
import { decide, type CandidateSample, type Decision, type ParentRun, type RatchetInput } from '../../src/ratchet/decide.ts'
import { DEFAULT_RATCHET_SETTINGS, type RatchetSettings } from '../../src/ratchet/settings.ts'

// Issue 15's rules in the pure ratchet, with the default settings (3 verifications, at least 2
// distinct other contributors) and round numbers: σ = 0.01, the parent measured 4 times at 1.000
// by honest contributors h1 and h2.

const S: RatchetSettings = { ...DEFAULT_RATCHET_SETTINGS, budgetSeconds: 300 }
const SIGMA = 0.01
const PARENT: ParentRun[] = [1.0, 1.0, 1.0, 1.0].map((valBpb, i) => ({ valBpb, contributorId: i < 2 ? 'h1' : 'h2' }))
const run = (valBpb: number, contributorId: string, workerId = `${contributorId}-gpu0`): CandidateSample => ({ valBpb, workerId, contributorId, trainingSeconds: 300 })

function input(samples: CandidateSample[], over: Partial<RatchetInput> & { authorId?: string; carriedClaim?: RatchetInput['candidate']['carriedClaim']; failedRuns?: RatchetInput['candidate']['failedRuns'] } = {}): RatchetInput {
  return {
    candidate: { authorId: over.authorId ?? 'mallory', samples, linesDelta: 3, carriedClaim: over.carriedClaim, failedRuns: over.failedRuns },
    parentSamples: (over.parentRuns ?? PARENT).map(r => r.valBpb),
    parentRuns: over.parentRuns ?? PARENT,
    sigma: SIGMA,
    parentIsBest: over.parentIsBest ?? true,
    classApproved: over.classApproved,
    settings: over.settings ?? S,
  }
}

function expectKind<K extends Decision['kind']>(t: Pick<typeof tap, 'equal'>, d: Decision, kind: K): Extract<Decision, { kind: K }> {
  t.equal(d.kind, kind, d.message)
  return d as Extract<Decision, { kind: K }>
}
const tap = t

t.test('three verifications by one other contributor are not enough: a second contributor must verify', async t => {
  const d = expectKind(t, decide(input([run(0.95, 'mallory'), run(0.95, 'friend'), run(0.95, 'friend'), run(0.95, 'friend')])), 'verify')
  t.equal(d.needed, 1)
  t.same(d.excludeContributorIds.sort(), ['friend', 'mallory'], 'the contributor who verified already waits for another')
})

t.test('an accomplice whose verifications carry the merge is not enough (sybil / colluding pair below the cap)', async t => {
  // mallory claims 0.95, her friend confirms 0.95 twice, one honest contributor measures the truth (1.0).
  const runs = [run(0.95, 'mallory'), run(0.95, 'friend'), run(0.95, 'friend'), run(1.0, 'h3')]
  const more = expectKind(t, decide(input(runs)), 'verify')
  t.match(more.message, /does not yet hold without the runs of any one other contributor/, 'it earns more runs by others, not a merge')
  // Honest contributors keep measuring the truth; the friend's runs never count toward the win.
  const honest = ['h4', 'h5', 'h6', 'h7'].map(h => run(1.0, h))
  const d = decide(input([...runs, ...honest]))
  t.equal(d.kind, 'discard', d.message)
  t.match(d.message, /without the runs of any one other contributor/)
})

t.test('an accomplice who supplied the baselines cannot make a null candidate look better', async t => {
  // The friend reported the parent 0.05 worse than it is; honest contributors measure the candidate at the truth, 1.0.
  const parentRuns: ParentRun[] = [{ valBpb: 1.05, contributorId: 'friend' }, { valBpb: 1.05, contributorId: 'friend' }, { valBpb: 1.05, contributorId: 'friend' }, { valBpb: 1.0, contributorId: 'h1' }]
  const d = decide(input([run(0.95, 'mallory'), run(1.0, 'h2'), run(1.0, 'h3'), run(0.95, 'friend')], { parentRuns }))
  t.not(d.kind, 'merge', d.message)
})

t.test('a baseline runner who verified nothing cannot carry a merge either (σ poisoner)', async t => {
  // poisoner reported one of the parent's four baselines as 4.0: P's mean is 1.75; honest runs of an
  // honest author's null change measure the truth, 1.0, and look 0.75 better than P.
  const parentRuns: ParentRun[] = [...PARENT.slice(0, 3), { valBpb: 4.0, contributorId: 'poisoner' }]
  const d = decide(input([run(1.0, 'h3'), run(1.0, 'h1'), run(1.0, 'h2'), run(1.0, 'h4')], { parentRuns, authorId: 'h3' }))
  t.not(d.kind, 'merge', d.message)
  t.match(d.message, /without the runs of any one other contributor/)
  const sequential = decide(input([run(1.0, 'h3'), run(1.0, 'h1'), run(1.0, 'h2'), run(1.0, 'h4')], { parentRuns, authorId: 'h3', settings: { ...S, policy: 'sequential' } }))
  t.not(sequential.kind, 'merge', `sequential: ${sequential.message}`)
})

t.test('a real improvement verified by three honest contributors still merges', async t => {
  const d = expectKind(t, decide(input([run(0.95, 'mallory'), run(0.951, 'h1'), run(0.949, 'h2'), run(0.95, 'h3')])), 'merge')
  t.equal(d.verifierIds.length, 3)
})

t.test('a candidate carried onto a newer best keeps its claim: above the cap, only others can reproduce it', async t => {
  const carriedClaim = { authorId: 'mallory', improvement: 0.6 }
  const first = expectKind(t, decide(input([], { carriedClaim })), 'verify')
  t.equal(first.reason, 'above-cap')
  t.ok(first.excludeContributorIds.includes('mallory'))
  // Her own verifications of the merged commit are claims too; honest ones show no improvement.
  const d = expectKind(t, decide(input([run(0.4, 'mallory'), run(1.0, 'h1'), run(1.001, 'h2'), run(0.999, 'h3')], { carriedClaim })), 'reject')
  t.equal(d.reason, 'unreproduced-improvement')
})

t.test('a carried candidate whose origin author verifies it gains nothing from that run', async t => {
  // The merged commit is authored by mallory; her friend rebased it (author), mallory's runs are not independent.
  const i = input([run(0.95, 'friend'), run(0.95, 'mallory'), run(0.95, 'mallory'), run(0.95, 'mallory')], { carriedClaim: { authorId: 'mallory', improvement: 0.05 } })
  i.candidate.authorId = 'friend'
  const d = expectKind(t, decide(i), 'verify')
  t.same(d.excludeContributorIds.sort(), ['friend', 'mallory'])
})

t.test('verification runs that fail for two other contributors reject the candidate; one saboteur does not', async t => {
  const samples = [run(0.95, 'mallory')]
  const one = decide(input(samples, { failedRuns: [{ workerId: 's', contributorId: 'saboteur' }, { workerId: 's', contributorId: 'saboteur' }] }))
  t.equal(one.kind, 'verify', `one contributor's failures only ask for more runs: ${one.message}`)
  const two = expectKind(t, decide(input(samples, { failedRuns: [{ workerId: 'a', contributorId: 'h1' }, { workerId: 'b', contributorId: 'h2' }] })), 'reject')
  t.equal(two.reason, 'fails-elsewhere')
  const own = decide(input(samples, { failedRuns: [{ workerId: 'm', contributorId: 'mallory' }, { workerId: 'm', contributorId: 'mallory' }] }))
  t.equal(own.kind, 'verify', "the author's own failures are not evidence against it")
})

t.test('a candidate of a class the maintainer has not approved is held, after sanity', async t => {
  t.equal(decide(input([run(0.5, 'mallory')], { classApproved: false })).kind, 'hold')
  t.equal(decide(input([{ ...run(0.5, 'mallory'), valBpb: NaN }], { classApproved: false })).kind, 'reject')
})

t.test('self-verification, where allowed, needs no other contributor (below the cap)', async t => {
  const settings = { ...S, allowSelfVerification: true }
  const d = decide(input([run(0.95, 'mallory'), run(0.95, 'mallory', 'm1'), run(0.95, 'mallory', 'm2'), run(0.95, 'mallory', 'm3')], { settings }))
  t.equal(d.kind, 'merge', d.message)
})

t.test('a claim far below the other contributors\' runs is marked contradicted; an ordinary lucky one is not', async t => {
  const forged = expectKind(t, decide(input([run(0.96, 'mallory'), run(1.0, 'h1'), run(1.001, 'h2'), run(0.999, 'h3')])), 'discard')
  t.equal(forged.claimContradicted, true, forged.message)
  const lucky = expectKind(t, decide(input([run(0.985, 'ann'), run(0.997, 'h1'), run(1.0, 'h2'), run(0.998, 'h3')], { authorId: 'ann' })), 'discard')
  t.equal(lucky.claimContradicted, undefined, lucky.message)
})

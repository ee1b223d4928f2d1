import t from 'tap'
import { CREDIT_PER_RUN_RECEIVED, nextUnit, VERIFY_CREDIT, verifyCredit, type HypothesisState, type QueuedUnit, type SchedulerInput } from '../../src/scheduler/next-unit.ts'

const H100 = 'h100-80g'
const BEST = 'c-best'
const ME = { id: 'w-me', contributorId: 'c-me', hardwareClass: H100 }

let n = 0
const unit = (u: Partial<QueuedUnit> & Pick<QueuedUnit, 'kind'>): QueuedUnit => ({
  id: `u${++n}`,
  commit: BEST,
  hardwareClass: null,
  leasedTo: null,
  queuedAt: n,
  ...u,
})
const verify = (u: Partial<QueuedUnit> = {}) => unit({ kind: 'verify', commit: 'c-cand', hardwareClass: H100, candidateWorkerId: 'w-author', ...u })
const hypothesis = (h: Partial<HypothesisState> & Pick<HypothesisState, 'id'>): HypothesisState => ({
  priority: 0,
  status: 'open',
  triedOn: [],
  createdAt: 0,
  ...h,
})

/** A campaign whose best is fully baselined on the worker's class, with an empty queue. */
const state = (over: Partial<SchedulerInput> = {}): SchedulerInput => ({
  worker: ME,
  best: BEST,
  baselines: { [H100]: 4 },
  units: [],
  hypotheses: [],
  settings: { baselineRuns: 4, allowSelfVerification: false },
  ...over,
})

t.test('1. baselines of the best on the worker’s class come first', async t => {
  t.test('a class with no baseline of the best gets one created', async t => {
    t.match(nextUnit(state({ baselines: {}, units: [verify()] })), { action: 'create', kind: 'baseline', commit: BEST, hardwareClass: H100 })
  })

  t.test('a queued baseline for the class is leased before anything else', async t => {
    const b = unit({ kind: 'baseline', hardwareClass: H100 })
    t.match(nextUnit(state({ baselines: {}, units: [verify(), b] })), { action: 'lease', unitId: b.id, kind: 'baseline' })
  })

  t.test('baselines are created until the class has `baselineRuns` of them', async t => {
    t.equal(nextUnit(state({ baselines: { [H100]: 3 } })).kind, 'baseline')
    t.equal(nextUnit(state({ baselines: { [H100]: 4 } })).kind, 'explore')
  })

  t.test('baselines being run by others count toward the target', async t => {
    const running = [1, 2].map(() => unit({ kind: 'baseline', hardwareClass: H100, leasedTo: 'w-other' }))
    t.equal(nextUnit(state({ baselines: { [H100]: 2 }, units: running })).kind, 'explore')
  })

  t.test('a baseline of another class is not this worker’s job', async t => {
    const other = unit({ kind: 'baseline', hardwareClass: 'rtx4090-24g' })
    t.match(nextUnit(state({ units: [other] })), { action: 'create', kind: 'explore' })
  })

  t.test('a queued baseline of an old best is ignored', async t => {
    const old = unit({ kind: 'baseline', hardwareClass: H100, commit: 'c-old' })
    t.equal(nextUnit(state({ units: [old] })).kind, 'explore')
  })
})

t.test('2. then verifications the worker is eligible for', async t => {
  t.test('a verification of someone else’s candidate on the same class is leased', async t => {
    const v = verify()
    t.match(nextUnit(state({ units: [v, unit({ kind: 'rebase' })] })), { action: 'lease', unitId: v.id, kind: 'verify' })
  })

  t.test('a worker never verifies its own candidate', async t => {
    const own = verify({ candidateWorkerId: ME.id })
    t.equal(nextUnit(state({ units: [own] })).kind, 'explore')
  })

  t.test("nor a candidate of its own contributor's other worker (same token: no independent witness)", async t => {
    const sibling = verify({ candidateWorkerId: 'w-my-other-gpu', candidateContributorId: ME.contributorId })
    t.equal(nextUnit(state({ units: [sibling] })).kind, 'explore')
    const other = verify({ candidateWorkerId: 'w-author', candidateContributorId: 'c-someone' })
    t.match(nextUnit(state({ units: [sibling, other] })), { action: 'lease', unitId: other.id })
  })

  t.test("self-verification allowed: the contributor's own workers may verify", async t => {
    const sibling = verify({ candidateWorkerId: 'w-my-other-gpu', candidateContributorId: ME.contributorId })
    t.equal(nextUnit(state({ units: [sibling], settings: { baselineRuns: 4, allowSelfVerification: true } })).kind, 'verify')
  })

  t.test('unless self-verification is allowed (single-worker campaigns)', async t => {
    const own = verify({ candidateWorkerId: ME.id })
    t.equal(nextUnit(state({ units: [own], settings: { baselineRuns: 4, allowSelfVerification: true } })).kind, 'verify')
  })

  t.test('a verification on another class is not eligible', async t => {
    t.equal(nextUnit(state({ units: [verify({ hardwareClass: 'rtx4090-24g' })] })).kind, 'explore')
  })

  t.test('a verification without a class (the pooled policy) goes to a worker of any class', async t => {
    const v = verify({ hardwareClass: null })
    t.match(nextUnit(state({ units: [v] })), { action: 'lease', unitId: v.id, kind: 'verify' })
  })

  t.test('a verification leased to someone else is not offered again', async t => {
    t.equal(nextUnit(state({ units: [verify({ leasedTo: 'w-other' })] })).kind, 'explore')
  })

  t.test('the oldest eligible verification goes first', async t => {
    const newer = verify({ queuedAt: 20 })
    const older = verify({ queuedAt: 10 })
    t.match(nextUnit(state({ units: [newer, older] })), { action: 'lease', unitId: older.id })
  })

  t.test('a candidate the worker has not measured yet is preferred over one it has', async t => {
    const measured = verify({ queuedAt: 1, measuredBy: ['w-author', ME.id] })
    const fresh = verify({ queuedAt: 2, commit: 'c-other', measuredBy: ['w-author'] })
    t.match(nextUnit(state({ units: [measured, fresh] })), { action: 'lease', unitId: fresh.id })
  })

  t.test('a worker may verify a candidate twice when nothing else needs verifying', async t => {
    const measured = verify({ measuredBy: ['w-author', ME.id] })
    t.match(nextUnit(state({ units: [measured] })), { action: 'lease', unitId: measured.id })
  })
})

t.test('3. then rebases', async t => {
  t.test('a queued rebase is leased before any exploration', async t => {
    const r = unit({ kind: 'rebase' })
    t.match(nextUnit(state({ units: [r], hypotheses: [hypothesis({ id: 'h1', priority: 9 })] })), { action: 'lease', unitId: r.id, kind: 'rebase' })
  })

  t.test('a rebase leased to someone else is not offered again', async t => {
    t.equal(nextUnit(state({ units: [unit({ kind: 'rebase', leasedTo: 'w-other' })] })).kind, 'explore')
  })

  t.test('a rebase whose run by this worker nobody could verify is left for a worker whose run can be', async t => {
    // Two contributors, and the rebase is of the other one's idea: both would be its authors.
    t.equal(nextUnit(state({ units: [unit({ kind: 'rebase', verifiable: false })] })).kind, 'explore')
    const r = unit({ kind: 'rebase', verifiable: true })
    t.match(nextUnit(state({ units: [unit({ kind: 'rebase', verifiable: false }), r] })), { action: 'lease', unitId: r.id, kind: 'rebase' })
  })
})

t.test('4. then the highest-priority open hypothesis not tried on the best', async t => {
  t.test('the highest priority wins', async t => {
    const hs = [hypothesis({ id: 'h-low', priority: 1 }), hypothesis({ id: 'h-high', priority: 5 })]
    t.match(nextUnit(state({ hypotheses: hs })), { action: 'create', kind: 'explore', parentCommit: BEST, hypothesisId: 'h-high' })
  })

  t.test('on equal priority the older hypothesis wins', async t => {
    const hs = [hypothesis({ id: 'h-new', createdAt: 2 }), hypothesis({ id: 'h-old', createdAt: 1 })]
    t.match(nextUnit(state({ hypotheses: hs })), { hypothesisId: 'h-old' })
  })

  t.test('a hypothesis already tried on the best is skipped', async t => {
    const hs = [hypothesis({ id: 'h-tried', priority: 5, triedOn: [BEST] }), hypothesis({ id: 'h-next', priority: 1 })]
    t.match(nextUnit(state({ hypotheses: hs })), { hypothesisId: 'h-next' })
  })

  t.test('a hypothesis tried only on an older parent is explored again on the best', async t => {
    t.match(nextUnit(state({ hypotheses: [hypothesis({ id: 'h1', triedOn: ['c-old'] })] })), { hypothesisId: 'h1' })
  })

  t.test('a hypothesis someone is exploring on the best right now is skipped', async t => {
    const busy = unit({ kind: 'explore', hypothesisId: 'h-busy', leasedTo: 'w-other' })
    const hs = [hypothesis({ id: 'h-busy', priority: 5 }), hypothesis({ id: 'h-next', priority: 1 })]
    t.match(nextUnit(state({ units: [busy], hypotheses: hs })), { hypothesisId: 'h-next' })
  })

  t.test('a queued exploration of the chosen hypothesis is leased rather than duplicated', async t => {
    const queued = unit({ kind: 'explore', hypothesisId: 'h1' })
    t.match(nextUnit(state({ units: [queued], hypotheses: [hypothesis({ id: 'h1' })] })), { action: 'lease', unitId: queued.id, kind: 'explore' })
  })

  t.test('closed hypotheses are not explored', async t => {
    const hs = ['merged', 'rejected', 'duplicate', 'tested'].map(status => hypothesis({ id: `h-${status}`, status, priority: 9 }))
    t.match(nextUnit(state({ hypotheses: hs })), { action: 'create', kind: 'explore', hypothesisId: null })
  })
})

t.test('5. otherwise free exploration on the best', async t => {
  t.test('with nothing queued and no hypotheses the agent picks the idea', async t => {
    t.match(nextUnit(state()), { action: 'create', kind: 'explore', parentCommit: BEST, hypothesisId: null })
  })

  t.test('many workers may explore freely at once', async t => {
    const others = [1, 2, 3].map(() => unit({ kind: 'explore', hypothesisId: null, leasedTo: 'w-other' }))
    t.match(nextUnit(state({ units: others })), { action: 'create', kind: 'explore', hypothesisId: null })
  })
})

t.test('baselineRuns below 1 is a bug and throws', async t => {
  t.throws(() => nextUnit(state({ settings: { baselineRuns: 0, allowSelfVerification: false } })), RangeError)
})

t.test('verifications of a contributor this one is out of credit with are left to others while it may explore', async t => {
  const theirs = verify({ candidateContributorId: 'c-fast' })
  const other = verify({ candidateContributorId: 'c-slow' })
  t.match(nextUnit(state({ units: [theirs, other], outOfCredit: ['c-fast'] })), { action: 'lease', unitId: other.id }, 'another contributor\'s candidate is verified')
  t.match(nextUnit(state({ units: [theirs], outOfCredit: ['c-fast'] })), { action: 'create', kind: 'explore' }, 'else the worker explores')
  t.match(nextUnit(state({ units: [theirs], outOfCredit: ['c-fast'], explorationAllowed: false })), { action: 'lease', unitId: theirs.id },
    'a worker that may not explore verifies rather than stand idle')
  t.match(nextUnit(state({ units: [theirs] })), { action: 'lease', unitId: theirs.id }, 'in credit, it verifies first')
  t.equal(verifyCredit(VERIFY_CREDIT, 0), 0, `${VERIFY_CREDIT} runs given with none back use the credit up`)
  t.equal(verifyCredit(VERIFY_CREDIT, 1), CREDIT_PER_RUN_RECEIVED, 'each run received earns more')
})

t.test('candidates of suspect workers are not verified', async t => {
  const v = verify({ candidateWorkerId: 'w-forger' })
  t.match(nextUnit(state({ units: [v], suspectWorkerIds: ['w-forger'] })), { action: 'create', kind: 'explore' })
  t.match(nextUnit(state({ units: [v], suspectWorkerIds: ['w-someone-else'] })), { action: 'lease', unitId: v.id })
})

t.test("a suspect's worker runs no baseline or verification of others (they would count for nothing): it explores", async t => {
  const v = verify()
  const wanted = { baselines: {}, units: [v] }
  t.match(nextUnit(state({ ...wanted, suspectContributorIds: [ME.contributorId] })), { action: 'create', kind: 'explore' })
  t.match(nextUnit(state({ ...wanted, suspectWorkerIds: [ME.id] })), { action: 'create', kind: 'explore' })
  t.match(nextUnit(state({ ...wanted, suspectContributorIds: ['c-someone-else'] })), { action: 'create', kind: 'baseline' })
  t.match(nextUnit(state({ units: [v], suspectContributorIds: ['c-someone-else'] })), { action: 'lease', unitId: v.id })
})

t.test('parent runs on demand: a queued baseline of a named parent is leased after the best’s own, even when it is no longer the best', async t => {
  const old = unit({ kind: 'baseline', commit: 'c-old', hardwareClass: H100 })
  const verification = verify()
  t.match(nextUnit(state({ units: [verification, old], parentsOnDemand: ['c-old'] })), { action: 'lease', unitId: old.id, kind: 'baseline' })
  t.match(nextUnit(state({ units: [verification, old] })), { action: 'lease', unitId: verification.id }, 'not named: left alone')
  const other = unit({ kind: 'baseline', commit: 'c-old', hardwareClass: 'a100' })
  t.match(nextUnit(state({ units: [verification, other], parentsOnDemand: ['c-old'] })), { action: 'lease', unitId: verification.id }, 'another class: left alone')
  const best = unit({ kind: 'baseline', commit: BEST, hardwareClass: H100 })
  t.match(nextUnit(state({ units: [old, best], parentsOnDemand: ['c-old'] })), { action: 'lease', unitId: best.id }, 'the best’s own first')
})

t.test('parent runs on demand: not by the candidate’s own contributors', async t => {
  const theirs = unit({ kind: 'baseline', commit: 'c-old', hardwareClass: H100, excludedContributorIds: ['c-me'] })
  const verification = verify()
  t.match(nextUnit(state({ units: [theirs, verification], parentsOnDemand: ['c-old'] })), { action: 'lease', unitId: verification.id })
  t.match(nextUnit(state({ worker: { ...ME, contributorId: 'c-other' }, units: [theirs, verification], parentsOnDemand: ['c-old'] })), { action: 'lease', unitId: theirs.id })
})

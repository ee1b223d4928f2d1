import t from 'tap'
import { DEFAULT_RATCHET_SETTINGS } from '../../src/ratchet/settings.ts'
import { DEFAULT_EFFECTS, simulateCampaign, summarize, type CampaignConfig, type SimulationSummary } from '../../../bench/ratchet/simulate.ts'

// A smaller version of the campaigns in bench/ratchet/run.ts: the H100's noise, the brief's mix of
// ideas, 4 workers, and the default settings. Deterministic (seeded), a few seconds.
const SIGMA = 0.038
const RUNS = 1000
const base = (over: Partial<CampaignConfig> = {}): CampaignConfig => ({
  ratchet: 'noise-aware',
  seed: 1,
  sigma: SIGMA,
  runs: RUNS,
  workers: 4,
  settings: { ...DEFAULT_RATCHET_SETTINGS, budgetSeconds: 300 },
  priorSigma: 0.01,
  baselineRuns: 4,
  cleanMergeRate: 0.8,
  parentSamples: 'all',
  effects: DEFAULT_EFFECTS,
  forgers: 0,
  forgeSigmas: 0,
  startValBpb: 1 + 4 * SIGMA * RUNS,
  ...over,
})
const campaigns = (over: Partial<CampaignConfig>, n: number): SimulationSummary =>
  summarize(Array.from({ length: n }, (_, i) => simulateCampaign(base({ ...over, seed: 500 + i }))), 300)

const ours = campaigns({}, 40)
const naive = campaigns({ ratchet: 'naive' }, 8)

t.test('the default ratchet keeps false accepts at or below 5 % of merges', async t => {
  t.ok(ours.merges > 1000, `${ours.merges} merges to judge by`)
  t.ok(ours.falseAcceptShare <= 0.05, `false accepts ${(100 * ours.falseAcceptShare).toFixed(1)} %`)
})

// Issue 15 made the verdict hold without the runs of any one other contributor (an accomplice's
// runs cannot carry a merge). That costs power: a candidate must convince on fewer runs. The
// target of 80 % still holds for the rule without it (one verifying contributor), which is what a
// campaign of trusted contributors may choose; with it, the defaults keep at least 70 %.
t.test('the default ratchet keeps at least 70 % of real improvements larger than 2σ (80 % without the accomplice rule)', async t => {
  t.ok(ours.bigKeptRate >= 0.7, `kept ${(100 * ours.bigKeptRate).toFixed(1)} %`)
  const trusting = campaigns({ settings: { ...base().settings, minVerifierContributors: 1 } }, 20)
  t.ok(trusting.bigKeptRate >= 0.8, `kept ${(100 * trusting.bigKeptRate).toFixed(1)} % with one verifying contributor`)
})

t.test('the default ratchet never merges harm worth mentioning', async t => {
  t.ok(ours.harmMergedSigmas < 0.5, `harm ${ours.harmMergedSigmas.toFixed(2)}σ per campaign`)
})

t.test('the naive single-run ratchet fails the false-accept target by far', async t => {
  t.ok(naive.falseAcceptShare > 0.2, `naive false accepts ${(100 * naive.falseAcceptShare).toFixed(1)} %`)
})

t.test('a worker forging huge improvements never gets one merged', async t => {
  const forged = campaigns({ forgers: 1, forgeSigmas: 10 }, 8)
  t.equal(forged.forgedFalseMerges, 0)
})

t.test('the same seed gives the same campaign', async t => {
  t.same(simulateCampaign(base({ runs: 200 })), simulateCampaign(base({ runs: 200 })))
})

t.test('a campaign spends exactly its run budget', async t => {
  const r = simulateCampaign(base({ runs: 203, workers: 16 }))
  t.equal(r.runs, 203)
  t.equal(Object.values(r.runsByKind).reduce((a, b) => a + b, 0), 203)
})

t.test('a single worker merges nothing unless it may verify itself', async t => {
  t.equal(simulateCampaign(base({ workers: 1, runs: 300 })).merges.length, 0)
  const solo = simulateCampaign(base({ workers: 1, runs: 300, settings: { ...base().settings, allowSelfVerification: true } }))
  t.ok(solo.merges.length > 0)
})

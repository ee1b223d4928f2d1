/**
 * Simulated campaigns for the ratchet: prints the tables and writes docs/RATCHET.md.
 *   npx tsx bench/ratchet/run.ts
 * Everything is seeded; the same command gives the same numbers on any machine.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { DEFAULT_RATCHET_SETTINGS, MIN_DEGREES_OF_FREEDOM, type RatchetSettings } from '../../coordinator/src/ratchet/index.ts'
import { DEFAULT_EFFECTS, simulateCampaign, summarize, type CampaignConfig, type EffectModel, type SimulationSummary } from './simulate.ts'
import { DEFAULT_SCHEDULER_SETTINGS } from '../../coordinator/src/scheduler/index.ts'

const COMMAND = 'npx tsx bench/ratchet/run.ts'
const DOC = new URL('../../docs/RATCHET.md', import.meta.url)
const PERFORMANCE = new URL('../../docs/PERFORMANCE.md', import.meta.url)
const BUDGET_SECONDS = 300
const H100_SIGMA = 0.038
const SMALL_SIGMA = 0.003
const PRIOR_SIGMA = 0.01
const RUNS = 1000
const WORKERS = 4
const CLEAN_MERGE_RATE = 0.8
const SEEDS = 40
const SWEEP_SEEDS = 20
const LEAN_EFFECTS: EffectModel = { ...DEFAULT_EFFECTS, nullShare: 0.6, harmfulShare: 0.3 }
const TARGET_FALSE_ACCEPTS = 0.05
const TARGET_BIG_KEPT = 0.8

const started = Date.now()

type Over = Partial<Omit<CampaignConfig, 'settings'>> & { settings?: Partial<RatchetSettings> }

function config(sigma: number, over: Over = {}): CampaignConfig {
  const runs = over.runs ?? RUNS
  return {
    ratchet: 'noise-aware',
    seed: 1,
    sigma,
    runs,
    workers: WORKERS,
    priorSigma: PRIOR_SIGMA,
    baselineRuns: DEFAULT_SCHEDULER_SETTINGS.baselineRuns,
    cleanMergeRate: CLEAN_MERGE_RATE,
    parentSamples: 'all',
    effects: DEFAULT_EFFECTS,
    forgers: 0,
    forgeSigmas: 0,
    // Effects are additive and the ratchets only see differences, so the level is arbitrary; it
    // only has to stay positive however many improvements a campaign stacks up (at most 4σ a run).
    startValBpb: 1 + 4 * Math.max(sigma, over.effectSigma ?? 0) * runs,
    ...over,
    settings: { ...DEFAULT_RATCHET_SETTINGS, budgetSeconds: BUDGET_SECONDS, ...over.settings },
  }
}

function run(c: CampaignConfig, seeds: number): SimulationSummary {
  const results = Array.from({ length: seeds }, (_, i) => simulateCampaign({ ...c, seed: c.seed * 1000 + i }))
  return summarize(results, BUDGET_SECONDS)
}

const pct = (x: number, digits = 1) => (Number.isNaN(x) ? '–' : `${(100 * x).toFixed(digits)} %`)
const num = (x: number, digits = 1) => (Number.isNaN(x) ? '–' : x.toFixed(digits))
const table = (head: string[], rows: string[][]) =>
  [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map(r => `| ${r.join(' | ')} |`)].join('\n')

// The three ratchets compared throughout.
const NAIVE: Over = { ratchet: 'naive' }
const AS_WRITTEN: Over = { settings: { z: 2, screenZ: undefined, replications: 2 } }
const DEFAULTS: Over = {}
const RATCHETS: [string, Over][] = [
  ['naive (one run beats the best’s one run)', NAIVE],
  ['one z = 2 for screen and verdict (DESIGN §7’s shape), 2 verifications', AS_WRITTEN],
  [`noise-aware defaults (screen ${DEFAULT_RATCHET_SETTINGS.screenZ}σ, verdict ${DEFAULT_RATCHET_SETTINGS.z}σ, ${DEFAULT_RATCHET_SETTINGS.replications} verifications)`, DEFAULTS],
]

// 1. Headline: the H100's noise, and the same ideas measured with little noise.
const SCENARIOS: { label: string; sigma: number; effectSigma?: number }[] = [
  { label: String(H100_SIGMA), sigma: H100_SIGMA },
  { label: `${SMALL_SIGMA}, same ideas`, sigma: SMALL_SIGMA, effectSigma: H100_SIGMA },
]
const headline = SCENARIOS.flatMap(({ label, sigma, effectSigma }) =>
  RATCHETS.map(([name, over]) => ({ label, name, s: run(config(sigma, { ...over, effectSigma }), SEEDS) })),
)
const keptRows = headline.map(({ label, name, s }) => [
  label, name, num(s.merges / s.campaigns), pct(s.falseAcceptShare), pct(s.nullAcceptRate, 2), pct(s.notBetterAcceptRate, 2), pct(s.bigKeptRate), pct(s.realKeptRate),
])
const costRows = headline.map(({ label, name, s }) => [
  label, name, num(s.runsPerMerge), num(s.runsPerRealMerge), num(s.driftSigmas, 0), num(s.harmMergedSigmas, 2), num(s.reportOptimismSigmas, 2), pct(s.share.verify, 0), pct(s.share.baseline, 0), pct(s.share.stale, 0), num(s.sigmaEstimateRatio, 2),
])
const keptTable = table(['σ', 'ratchet', 'merges / campaign', 'false accepts (share of merges)', 'null candidates merged', 'null or harmful merged', 'improvements > 2σ kept', 'all improvements kept'], keptRows)
const costTable = table(['σ', 'ratchet', 'runs / merge', 'runs / real merge', 'best’s true drift (σ)', 'harm merged (σ)', 'leaderboard optimism (σ)', 'verify runs', 'baseline runs', 'runs gone stale', 'σ estimate / true σ'], costRows)
// With effects drawn in units of the small σ itself, a campaign is the H100 one scaled down.
const scaledDown = run(config(SMALL_SIGMA), SEEDS)

// 2. A leaner mix: fewer real improvements, where false accepts weigh more.
const lean = RATCHETS.map(([name, over]) => ({ name, s: run(config(H100_SIGMA, { ...over, effects: LEAN_EFFECTS }), SEEDS) }))
const leanTable = table(
  ['ratchet', 'false accepts', 'improvements > 2σ kept', 'runs / merge', 'best’s true drift (σ)', 'harm merged (σ)'],
  lean.map(({ name, s }) => [name, pct(s.falseAcceptShare), pct(s.bigKeptRate), num(s.runsPerMerge), num(s.driftSigmas, 0), num(s.harmMergedSigmas, 2)]),
)

// 3. The settings, swept at the H100 noise level.
const meets = (s: SimulationSummary) => s.falseAcceptShare <= TARGET_FALSE_ACCEPTS && s.bigKeptRate >= TARGET_BIG_KEPT
const sweep: { label: string[]; s: SimulationSummary }[] = []
for (const screen of ['z', 1] as const)
  for (const z of screen === 'z' ? [1.5, 2, 2.5] : [1.5, 2, 2.25, 2.5])
    for (const replications of [1, 2, 3]) {
      const screenZ = screen === 'z' ? undefined : screen
      const s = run(config(H100_SIGMA, { seed: 2, settings: { z, screenZ, replications } }), SWEEP_SEEDS)
      sweep.push({ label: [screen === 'z' ? `${z} (= z)` : String(screen), String(z), String(replications), String(DEFAULT_SCHEDULER_SETTINGS.baselineRuns), 'all runs'], s })
    }
for (const [baselineRuns, parentSamples] of [[6, 'all'], [2, 'all'], [4, 'baselines']] as const) {
  const s = run(config(H100_SIGMA, { seed: 2, baselineRuns, parentSamples }), SWEEP_SEEDS)
  const d = DEFAULT_RATCHET_SETTINGS
  sweep.push({ label: [String(d.screenZ), String(d.z), String(d.replications), String(baselineRuns), parentSamples === 'all' ? 'all runs' : 'baseline runs only'], s })
}
const sweepTable = table(
  ['screenZ', 'z', 'verifications', 'baseline runs', 'parent samples', 'false accepts', 'improvements > 2σ kept', 'runs / merge', 'best’s true drift (σ)', 'both targets'],
  sweep.map(({ label, s }) => [...label, pct(s.falseAcceptShare), pct(s.bigKeptRate), num(s.runsPerMerge), num(s.driftSigmas, 0), meets(s) ? 'yes' : 'no']),
)

// 4. One worker in four forges its exploration results.
const UNDEFENDED: [string, Over] = [`${RATCHETS[2][0]}, without the forgery defences`, { forgeryDefences: false }]
const forgery = [10, 3].flatMap(forgeSigmas =>
  [RATCHETS[0], ...(forgeSigmas === 10 ? [UNDEFENDED] : []), RATCHETS[2]].map(([name, over]) => ({
    forgeSigmas,
    name,
    s: run(config(H100_SIGMA, { ...over, seed: 3, forgers: 1, forgeSigmas }), SEEDS),
  })),
)
const undefended = forgery[1].s
const defended = forgery[2].s
const forgeryTable = table(
  ['forged by', 'ratchet', 'forged merges that were not improvements / campaign', 'false accepts (all merges)', 'best’s true drift (σ)'],
  forgery.map(({ forgeSigmas, name, s }) => [
    `${forgeSigmas}σ = ${(forgeSigmas * H100_SIGMA).toFixed(3)} (${forgeSigmas * H100_SIGMA > DEFAULT_RATCHET_SETTINGS.maxImprovement ? 'above' : 'below'} the cap)`,
    name, num(s.forgedFalseMerges / s.campaigns, 2), pct(s.falseAcceptShare), num(s.driftSigmas, 0),
  ]),
)

// 5. Scaling: the same GPU budget spread over more workers.
const SCALE_RUNS = 1920
const scaling = [1, 4, 16, 64].flatMap(workers =>
  [RATCHETS[0], RATCHETS[2]].map(([name, over]) => {
    const solo = workers === 1 && over.ratchet !== 'naive'
    const c = config(H100_SIGMA, { ...over, seed: 4, workers, runs: SCALE_RUNS, settings: solo ? { allowSelfVerification: true } : {} })
    return { workers, name: solo ? `${name}, self-verification` : name, s: run(c, SWEEP_SEEDS) }
  }),
)
const scalingTable = table(
  ['workers', 'ratchet', 'wall-clock hours', 'real merges / GPU-hour', 'true gain / GPU-hour (bpb)', 'true gain / wall-clock hour (bpb)', 'false accepts', 'verify runs', 'baseline runs', 'runs gone stale', 'rebase runs'],
  scaling.map(({ workers, name, s }) => [
    String(workers), name, num((s.runs / s.campaigns / workers) * (BUDGET_SECONDS / 3600), 1), num(s.realMergesPerGpuHour, 2), num(s.gainPerGpuHour, 4), num(s.gainPerWallHour, 3),
    pct(s.falseAcceptShare), pct(s.share.verify, 0), pct(s.share.baseline, 0), pct(s.share.stale, 0), pct(s.share.rebase, 1),
  ]),
)

// Headline numbers for the prose.
const naive = headline[0].s
const written = headline[1].s
const ours = headline[2].s
const naiveSmall = headline[3].s
const oursSmall = headline[5].s
const oursLean = lean[2].s
const seconds = ((Date.now() - started) / 1000).toFixed(1)
const verdict = (s: SimulationSummary) =>
  `${pct(s.falseAcceptShare)} false accepts (target ≤ ${pct(TARGET_FALSE_ACCEPTS, 0)}: ${s.falseAcceptShare <= TARGET_FALSE_ACCEPTS ? 'met' : `missed by ${pct(s.falseAcceptShare - TARGET_FALSE_ACCEPTS)}`}), ` +
  `${pct(s.bigKeptRate)} of improvements > 2σ kept (target ≥ ${pct(TARGET_BIG_KEPT, 0)}: ${s.bigKeptRate >= TARGET_BIG_KEPT ? 'met' : `missed by ${pct(TARGET_BIG_KEPT - s.bigKeptRate)}`})`
const d = DEFAULT_RATCHET_SETTINGS

const doc = `# The ratchet

The coordinator keeps a change only when it measurably beats the current best. This page states the
rule (the code is \`coordinator/src/ratchet/decide.ts\`), the defaults, and what a simulation says
they buy. Every number below comes from one command, seeded, which rewrites this page:

\`\`\`
${COMMAND}
\`\`\`

(${seconds} s on the machine that last ran it.)

## The rule

For a candidate C trained from parent P, on one hardware class H (numbers are never compared
across classes; \`hardwareClass()\` in \`ratchet/hardware-class.ts\` names them, e.g. \`h100-80g\`):

- Δ = mean(val_bpb of C on H) − mean(val_bpb of P on H), negative is better;
- threshold(z) = max(minDelta, z·σ·√(1/n_C + 1/n_P)).

1. **Sanity.** A non-finite or non-positive val_bpb, or training_seconds outside budget·(1 ± tolerance),
   from any worker, rejects C.
2. **Screen.** The author's run (the *claim*) must reach Δ ≤ −threshold(screenZ), else C is discarded.
   A claimed improvement above \`maxImprovement\` sets the author's runs aside: from here on only
   other workers' runs count, and if they do not bear the claim out C is *rejected* as unreproduced.
3. **Stale.** If the best has moved on since P, a promising C is returned as \`stale\`: the caller
   merges its change onto the best (three-way) and the merged commit is verified like a new one,
   or, on a conflict, queues a \`rebase\` unit.
4. **Verify.** Workers other than the author re-run C until \`replications\` verifications are in. No
   early stop: one verification says too little, and stopping on it loses real improvements.
5. **Verdict.** All runs together must reach Δ ≤ −threshold(z), *and* the other workers' runs alone
   must clear threshold(screenZ) — they would have earned verification by themselves — so one
   worker's lucky or inflated number cannot carry the mean. Then C merges; the merge records Δ, σ,
   the threshold, n_C, n_P, every sample and the verifiers.

A change that deletes code (negative line delta) and stays within Δ ≤ +minDelta is a
*simplification win*, screened, verified and judged the same way, and flagged on the merge.

**Noise floor σ** (\`ratchet/noise.ts\`): a robust estimate from repeated measurements of the same
commit on the class — the median of all within-commit pairwise differences |a − b|, divided by
√2·0.6745 — so differences between commits never count as noise and one wild run cannot freeze a
class; it never drops below half the class's typical per-commit spread (issue 15, "Adversaries" below). The campaign's prior σ is used until the repeats give at least ${MIN_DEGREES_OF_FREEDOM} degrees of
freedom, Σ(nᵢ−1) ≥ ${MIN_DEGREES_OF_FREEDOM}: four runs of one commit, or two runs each of three commits.

**Parent samples** are the baseline and verification runs of P on H, never claims (the author's
own runs, explore or rebase): a merge copies only its verifications onto the new best. The scheduler asks for baselines until the best has
${DEFAULT_SCHEDULER_SETTINGS.baselineRuns} runs on a class, so after a merge that had
${d.replications} verifications it needs none.

## The review gate

The ratchet measures that a candidate is *faster*; it cannot tell whether it is *fair*. A hostile
contributor's \`train.py\` can set every learning rate to 0 and print a fake summary, read the
validation split, reassign \`time.time\`, let the model attend to future tokens, or reach files
outside its run folder: the sandbox and the trusted evaluator in the worker take most of that away,
and the review is the last gate before the branch moves. Where step 5 says *merge*, the candidate
becomes \`awaiting-review\` instead (\`units/merge.ts\` \`finishMerge\` → \`review/gate.ts\`), and the
branch moves only after the approvals its campaign asks for (\`review/policy.ts\`):

| \`review\` | who approves | without \`ANTHROPIC_API_KEY\` on the coordinator |
|---|---|---|
| \`agent\` (default) | the review agent | merges **without review**, with a warning |
| \`maintainer\` | the maintainer, on the dashboard | the same |
| \`agent+maintainer\` | both | the maintainer only, with a warning |
| \`none\` | nobody (a private, trusted campaign) | the same |

- **The agent** is Claude through \`@anthropic-ai/sdk\` (\`review/agent.ts\`), run by the coordinator.
  It gets the campaign's rules (the locked-file contract: prepare.py is locked; no validation data,
  clock tampering, forged or self-printed summary, look-ahead, file/network/process access; the full
  list is \`CAMPAIGN_RULES\` in \`review/prompt.ts\`), program.md, the evidence, the candidate's diff
  against its parent and the whole candidate \`train.py\` with line numbers — the contributor's text
  fenced by a marker it does not contain, and any instruction inside it a reason to reject. It must
  answer by one forced tool call, \`submit_review\`: verdict, summary, reasons, concerns with line
  numbers. A call that fails (outage, refused key, malformed answer, after the SDK's own retries)
  is never a verdict: the candidate keeps waiting, the failure shows in the review queue and the
  audit log (\`review-error\`), and the agent is asked again after a pause that doubles (30 s up to
  15 min).
- **The maintainer** decides on the dashboard's review queue (diff, samples, Δ, σ, the agent's
  review), approve or reject, a reason required either way (\`admin.review\`, admin token). In
  \`agent\` mode the maintainer may stand in for an agent that keeps failing; in \`agent+maintainer\`
  both must approve. One rejection rejects.
- **On record.** An approval goes into the merge row (\`reviewer\`, \`review_reason\`) and the merge
  commit's trailer (\`reviewed-by:\`, \`review-reason:\`); a rejection makes the candidate \`rejected\`
  with the decision \`rejected by review (<agent model | maintainer>): <reason>\`, shown in the
  experiment detail. An unreviewed merge says \`reviewed-by: none\` and, for a fallback,
  \`review-warning:\`.
- **The best may move** while a candidate waits. Its review is then \`superseded\` and the candidate
  goes the stale way (step 3): its change is merged onto the new best, measured again, and that
  result is reviewed afresh. Nothing merges onto a best it was not measured against.
- **The fallback is loud**: a banner on the campaign's dashboard, a line when \`coordinator start\`
  starts, and \`review-fallback\` / \`review-skipped\` events in the audit log.

## Defaults

| setting | default | why |
|---|---|---|
| \`screenZ\` | ${d.screenZ} | the single screening run decides most of the power; a lenient screen spends a few runs verifying near-misses and keeps far more real improvements (sweep below) |
| \`z\` | ${d.z} | the verdict, with ${d.replications + 1} or more runs: this is what holds false accepts down; 2 would do for the brief's mix, 2.25 keeps the leaner mix below 5 % too |
| \`replications\` | ${d.replications} | with fewer, the lenient screen lets too many lucky nulls through to a weak verdict |
| \`minDelta\` | ${d.minDelta} | a gain below a thousandth of a bit per byte is not worth a merge; also the simplification tolerance |
| \`maxImprovement\` | ${d.maxImprovement} | far outside what one change does to a 5-minute run (6σ at the H100's σ), so it only trips on bugs and forgeries; a real improvement that large still merges once reproduced |
| \`budgetTolerance\` | ${d.budgetTolerance} | training_seconds is set by the trainer's own clock; a run far off it had its timer edited |
| baseline runs per best and class | ${DEFAULT_SCHEDULER_SETTINGS.baselineRuns} | n_P enters every threshold; 4 runs also give the noise floor its 3 degrees of freedom on the first best |

The rule as DESIGN §7 first wrote it has one z for screen and verdict. With z = 2 it keeps false
accepts very low but cannot keep 80 % of improvements larger than 2σ: an improvement of exactly 2σ
passes a single-run screen at 2σ less than half the time (the parent's mean is uncertain too),
whatever happens afterwards. Splitting the
screen (\`screenZ\`) from the verdict (\`z\`) meets both targets; \`screenZ\` left unset gives the rule as
first written.

## What the simulation does

\`bench/ratchet/simulate.ts\` plays whole campaigns with the real scheduler (\`nextUnit\`), the real noise
floor and the real \`decide\`; only the training is replaced by truth + Gaussian noise of sd σ.
${WORKERS} workers of one class, ${RUNS} runs per campaign (≈ ${Math.round((RUNS * BUDGET_SECONDS) / 3600)} GPU-hours at 5 minutes a run), ${SEEDS} campaigns per row.
Every exploration draws a candidate with a known true effect: ${pct(DEFAULT_EFFECTS.nullShare, 0)} none, ${pct(DEFAULT_EFFECTS.harmfulShare, 0)} harmful
by U(${DEFAULT_EFFECTS.harmfulSigmas.join(', ')})σ, ${pct(1 - DEFAULT_EFFECTS.nullShare - DEFAULT_EFFECTS.harmfulShare, 0)} improvements by U(${DEFAULT_EFFECTS.improvementSigmas.join(', ')})σ. Effects are additive, so a change
keeps its effect when merged onto a later best; ${pct(CLEAN_MERGE_RATE, 0)} of stale changes merge cleanly, the rest become
rebase units. The prior σ is ${PRIOR_SIGMA}. σ = ${H100_SIGMA} is the H100 trainer's spread at a 30 s budget
(seeds gave 1.571 / 1.592 / 1.500; their sample sd is 0.048, so the real noise may be a little higher).
The second scenario measures the same ideas (effects still drawn in units of ${H100_SIGMA}) with
σ = ${SMALL_SIGMA}, standing for a long budget with deterministic kernels; all its "σ" columns are in units
of ${SMALL_SIGMA}. The naive ratchet is plain
autoresearch on the same workers: every run explores the current best and is kept when its one
number beats the one number the best was kept with.

A *false accept* is a merge whose true effect is ≥ 0. "Improvements > 2σ kept" counts candidates
that were truly better by more than 2σ and ended up on the best (rebases and three-way merges
included); candidates still undecided when a campaign ends are left out.

## Results

### What is kept

${keptTable}

### What it costs

${costTable}

*Drift* is the change of the best's true val_bpb over a campaign; *harm merged* adds up the true
effects of merges that made things worse; *leaderboard optimism* is the final best's reported
val_bpb minus its true one (negative: it looks better than it is; naive reports the one run it was
kept with, ours the mean of its runs).

**Headline.** At σ = ${H100_SIGMA} the defaults give ${verdict(ours)}, at ${num(ours.runsPerMerge)} runs per
merge. The naive ratchet: ${pct(naive.falseAcceptShare)} false accepts, ${pct(naive.nullAcceptRate)} of null candidates merged.
One z = 2 for screen and verdict: ${verdict(written)}.
Measuring the same ideas with σ = ${SMALL_SIGMA} every real improvement is larger than 3σ, and the
defaults give ${verdict(oursSmall)}; the naive ratchet still merges ${pct(naiveSmall.nullAcceptRate)} of null candidates
(${pct(naiveSmall.falseAcceptShare)} of its merges), because the number it must beat was itself a lucky run.
(Had the effects been drawn in units of ${SMALL_SIGMA} too, a campaign would simply be the H100 one scaled down:
the defaults then give ${verdict(scaledDown)}, the only difference being minDelta, which is 0.33σ there.)

**Read the drift column with care.** In this mix a third of all ideas are real and large, and a
false accept is nearly free (most are exact nulls), so the naive ratchet — merging in
${num(naive.runsPerMerge)} runs what ours merges in ${num(ours.runsPerMerge)} — moves the true best further per GPU-hour
(${num(naive.driftSigmas, 0)}σ against ${num(ours.driftSigmas, 0)}σ). It pays with a branch where ${pct(naive.falseAcceptShare, 0)} of merges
are noise or harm (dead code that every later experiment carries), a leaderboard that flatters the
best, and no defence against a worker that lies (below). What the noise-aware ratchet buys is a
branch where every merge is real and every number reproducible; what it costs is the verification
and baseline runs in the table.

### A leaner mix: ${pct(1 - LEAN_EFFECTS.nullShare - LEAN_EFFECTS.harmfulShare, 0)} real improvements, ${pct(LEAN_EFFECTS.nullShare, 0)} null, ${pct(LEAN_EFFECTS.harmfulShare, 0)} harmful (σ = ${H100_SIGMA})

${leanTable}

With real improvements rarer, each false accept weighs more in the share: the defaults give
${verdict(oursLean)}. A campaign that knows its ideas are mostly noise should raise \`z\`.

### Settings sweep (σ = ${H100_SIGMA}, ${SWEEP_SEEDS} campaigns per row)

${sweepTable}

### Forged results: one worker in ${WORKERS} subtracts a fixed amount from every exploration it reports

${forgeryTable}

Above the cap the author's number never counts, so a forgery is only as good as an honest null
candidate's luck with other workers' runs; below the cap the verdict's second condition (the other
workers' runs alone must clear the screen's bar) does most of the same work.

Keeping forgeries out of the branch is not enough, though: every forged claim earns verification
runs, and verifications come before exploration, so one forger in four can keep the other three
busy disproving it: without the two rules below, the best moved ${num(undefended.driftSigmas, 0)}σ in a campaign instead of
${num(defended.driftSigmas, 0)}σ. The two rules, which the simulation plays by default: exploration runs (the claims) do not
enter the noise floor (a forged run far from its verifications inflated σ and with it every
threshold), and a worker with ${2} claims above the cap that others did not reproduce becomes a
*suspect* — the scheduler (\`suspectWorkerIds\`) stops verifying its candidates until the maintainer
decides. A forger that stays below the cap is not caught by that rule: its claims are discarded, but
each costs ${DEFAULT_RATCHET_SETTINGS.replications} verification runs; catching it needs a reputation (a worker whose claims fail verification
far more often than others'), which is left to the coordinator.

## Scaling: improvements per GPU-hour for 1, 4, 16 and 64 workers

The same GPU budget (${SCALE_RUNS} runs of 5 minutes = ${SCALE_RUNS * BUDGET_SECONDS / 3600} GPU-hours) spread over more workers, σ = ${H100_SIGMA},
${SWEEP_SEEDS} campaigns per row. A single worker cannot be verified by anyone else, so the one-worker
row of the noise-aware ratchet allows self-verification (\`allowSelfVerification\`); with the default
it would never merge.

${scalingTable}

*Runs gone stale* are runs spent on candidates whose parent stopped being the best before they were
decided (their change is then merged onto the new best and verified again, or rebased): the
duplicated work that parallelism brings. Every worker of a round explores the same best, so the
more workers, the more of them build on a parent that a colleague replaces in the same round.
The simulation has no hypotheses queue, so two workers never pick the same idea; duplicated ideas
are left to \`hypotheses/dedup.ts\` and the scheduler's "not tried on this parent" rule.

## What the simulation leaves out

- One hardware class. With several, each class needs its own baselines, and verifications wait for
  a worker of the candidate's class.
- Effects are additive and independent; real changes interact, and their size shrinks as a campaign
  matures.
- Every run takes exactly one budget and nobody crashes or disconnects.
- No simplification candidates (every change adds code), so the simplification rule is covered by
  the unit tests only.
- No review: every candidate the rule accepts counts as merged (the review gate above only ever
  holds back or rejects, it never adds a merge).
`

// The adversary section is written by bench/adversaries/run.ts: keep it as it is.
const KEEP = '<!-- adversaries: kept by bench/ratchet/run.ts from here on -->'
const previous = readFileSync(DOC, 'utf8')
writeFileSync(DOC, previous.includes(KEEP) ? `${doc.trimEnd()}\n\n${previous.slice(previous.indexOf(KEEP))}` : doc)
// The scaling table also goes into docs/PERFORMANCE.md (issue 9's three benchmarks side by side).
const BEGIN = '<!-- bench/ratchet: begin -->'
const END = '<!-- bench/ratchet: end -->'
const perf = readFileSync(PERFORMANCE, 'utf8')
const a = perf.indexOf(BEGIN)
const b = perf.indexOf(END)
if (a < 0 || b < a) throw new Error(`docs/PERFORMANCE.md has no "${BEGIN}" … "${END}" markers: put them where the scaling table goes`)
writeFileSync(PERFORMANCE, `${perf.slice(0, a + BEGIN.length)}\n\`${COMMAND}\` (seeded: the same numbers on any machine; ${seconds} s here). ${SCALE_RUNS} runs of 5 minutes = ${SCALE_RUNS * BUDGET_SECONDS / 3600} GPU-hours per row, σ = ${H100_SIGMA}, ${SWEEP_SEEDS} campaigns per row; the one-worker row of the noise-aware ratchet allows self-verification. Definitions and discussion: [docs/RATCHET.md](RATCHET.md#scaling-improvements-per-gpu-hour-for-1-4-16-and-64-workers).\n\n${scalingTable}\n${perf.slice(b)}`)
console.log(doc)
console.error(`wrote ${DOC.pathname} in ${seconds} s`)

import { createRng, decideNaive, type Rng, type UnitKind } from '../../shared/src/index.ts'
import { nextUnit, type QueuedUnit } from '../../coordinator/src/scheduler/next-unit.ts'
import { decide, type CandidateSample } from '../../coordinator/src/ratchet/decide.ts'
import { noiseFloorOfGroups } from '../../coordinator/src/ratchet/noise.ts'
import type { RatchetSettings } from '../../coordinator/src/ratchet/settings.ts'

/**
 * A synthetic campaign with known truth, to measure what a ratchet keeps. Every candidate carries
 * a true effect on val_bpb; every run reports truth + Gaussian noise of sd σ. Workers all share one
 * hardware class and each run takes exactly one budget, so time advances in rounds: every worker
 * takes a unit (through the real scheduler), trains, reports; then the real ratchet decides.
 *
 * The noise-aware campaign runs the real pieces end to end — scheduler, noise floor estimated from
 * the repeated measurements, `decide` — and plays the coordinator's part in between: it creates the
 * verification units a decision asks for, moves the best on a merge, on a stale decision either
 * merges the change onto the new best (a clean three-way merge, with probability
 * `cleanMergeRate`) or queues a rebase, and marks a worker suspect after two unreproduced claims.
 * Parent samples are every run of the parent (or only its baseline runs, see `parentSamples`); the
 * noise floor uses baseline and verification runs only. Effects are additive: a change worth e on
 * its parent is worth e on any later best.
 *
 * The naive campaign is plain autoresearch spread over the same workers: each run explores on the
 * current best and is kept when its one number beats the number the best was kept with.
 */

export interface EffectModel {
  /** Share of candidates that change nothing. */
  nullShare: number
  /** Share that make things worse, by a uniform amount in `harmfulSigmas` (in units of σ). */
  harmfulShare: number
  harmfulSigmas: [number, number]
  /** The rest improve val_bpb by a uniform amount in `improvementSigmas` (in units of σ). */
  improvementSigmas: [number, number]
}

export const DEFAULT_EFFECTS: EffectModel = {
  nullShare: 0.4,
  harmfulShare: 0.3,
  harmfulSigmas: [0.25, 3],
  improvementSigmas: [0.25, 4],
}

export interface CampaignConfig {
  ratchet: 'naive' | 'noise-aware'
  seed: number
  /** True run-to-run standard deviation of val_bpb. */
  sigma: number
  /** The σ in whose units effects are drawn (default: `sigma`): set it to compare noise levels on the same ideas. */
  effectSigma?: number
  /** Total training runs (GPU budget) of the campaign, all kinds counted. */
  runs: number
  workers: number
  settings: RatchetSettings
  /**
   * What counts as the parent's samples: every run of the parent commit (`all`, what the
   * measurements table holds), or only runs of baseline units (`baselines`): a merged candidate's
   * own runs were selected for being good, so they make the parent look better than it is.
   */
  parentSamples: 'all' | 'baselines'
  /** The campaign spec's prior σ, used until the measurements give 3 degrees of freedom. */
  priorSigma: number
  /** Baseline runs of each best the scheduler asks for. */
  baselineRuns: number
  /** Chance that a stale change merges cleanly onto the new best (else: a rebase unit). */
  cleanMergeRate: number
  effects: EffectModel
  /** How many workers forge their exploration results, and by how much (in units of σ). */
  forgers: number
  forgeSigmas: number
  /**
   * The coordinator's defences against forgers (default on): exploration runs stay out of the
   * noise floor, and a worker with two unreproduced claims above the cap becomes a suspect whose
   * candidates nobody verifies. Off only to show what they are for.
   */
  forgeryDefences?: boolean
  startValBpb: number
}

export type IdeaKind = 'null' | 'harmful' | 'improvement'

export interface IdeaOutcome {
  kind: IdeaKind
  /** True effect in units of σ (negative: better). */
  sigmas: number
  outcome: 'merged' | 'closed' | 'open'
  /** The last decision about it, e.g. `discard:not-promising`, `stale`, `merge`. */
  lastDecision: string
  /** Explored by a forging worker. */
  forged: boolean
}

export interface MergeRecord {
  /** True val_bpb of the new best minus that of the best it replaced. */
  trueEffect: number
  forged: boolean
  round: number
}

export interface CampaignResult {
  ratchet: CampaignConfig['ratchet']
  workers: number
  sigma: number
  runs: number
  rounds: number
  runsByKind: Record<UnitKind, number>
  /** Runs spent on candidates whose parent stopped being the best before they were decided. */
  staleRuns: number
  merges: MergeRecord[]
  ideas: IdeaOutcome[]
  startTrue: number
  endTrue: number
  /** The val_bpb the leaderboard shows for the final best (naive: its one run; ours: mean of its runs). */
  endReported: number
  /** The noise-aware ratchet's σ estimate at the end (null for naive or before any repeat). */
  sigmaEstimate: number | null
}

interface Idea {
  kind: IdeaKind
  effect: number
  outcome: IdeaOutcome['outcome']
  lastDecision: string
  forged: boolean
}

interface Commit {
  id: string
  trueValue: number
  parent: string | null
  idea: Idea | null
  author: string | null
  forged: boolean
}

function drawIdea(rng: Rng, m: EffectModel, sigma: number): Idea {
  const u = rng.next()
  const [kind, sigmas]: [IdeaKind, number] =
    u < m.nullShare ? ['null', 0]
    : u < m.nullShare + m.harmfulShare ? ['harmful', rng.uniform(...m.harmfulSigmas)]
    : ['improvement', -rng.uniform(...m.improvementSigmas)]
  return { kind, effect: sigmas * sigma, outcome: 'open', lastDecision: '', forged: false }
}

/** Simulated workers; each is also its own contributor (one token per worker). */
const workerIds = (n: number) => Array.from({ length: n }, (_, i) => `w${i}`)

function outcomes(ideas: readonly Idea[], sigma: number): IdeaOutcome[] {
  return ideas.map(i => ({ kind: i.kind, sigmas: i.effect / sigma, outcome: i.outcome, lastDecision: i.lastDecision, forged: i.forged }))
}

function simulateNaive(cfg: CampaignConfig, rng: Rng): CampaignResult {
  const workers = workerIds(cfg.workers)
  const forgers = new Set(workers.slice(0, cfg.forgers))
  let best: Commit = { id: 'c0', trueValue: cfg.startValBpb, parent: null, idea: null, author: null, forged: false }
  // Plain autoresearch starts by measuring the unmodified code once.
  let recorded = rng.normal(best.trueValue, cfg.sigma)
  let runs = 1
  let rounds = 1
  let staleRuns = 0
  let nextId = 1
  const ideas: Idea[] = []
  const merges: MergeRecord[] = []
  while (runs < cfg.runs) {
    const reports: { commit: Commit; value: number }[] = []
    for (const w of workers) {
      if (runs >= cfg.runs) break
      const idea = drawIdea(rng, cfg.effects, cfg.effectSigma ?? cfg.sigma)
      idea.forged = forgers.has(w)
      ideas.push(idea)
      const commit: Commit = { id: `c${nextId++}`, trueValue: best.trueValue + idea.effect, parent: best.id, idea, author: w, forged: idea.forged }
      const value = rng.normal(commit.trueValue, cfg.sigma) - (idea.forged ? cfg.forgeSigmas * cfg.sigma : 0)
      reports.push({ commit, value })
      runs++
    }
    for (const { commit, value } of reports) {
      const idea = commit.idea!
      idea.outcome = 'closed'
      const decision = decideNaive(value, recorded)
      idea.lastDecision = decision.kind
      if (decision.kind !== 'merge') continue
      let next = commit
      if (commit.parent !== best.id) {
        // Someone else's change was kept this round; the grid merges this one onto it if git can.
        if (!rng.chance(cfg.cleanMergeRate)) {
          idea.lastDecision = 'merge-conflict'
          staleRuns++
          continue
        }
        next = { ...commit, id: `c${nextId++}`, trueValue: best.trueValue + idea.effect, parent: best.id }
      }
      merges.push({ trueEffect: next.trueValue - best.trueValue, forged: commit.forged, round: rounds })
      idea.outcome = 'merged'
      best = next
      recorded = value
    }
    rounds++
  }
  return {
    ratchet: 'naive', workers: cfg.workers, sigma: cfg.sigma, runs, rounds, runsByKind: { baseline: 1, explore: runs - 1, verify: 0, rebase: 0 },
    staleRuns, merges, ideas: outcomes(ideas, cfg.sigma), startTrue: cfg.startValBpb, endTrue: best.trueValue, endReported: recorded, sigmaEstimate: null,
  }
}

const SUSPECT_AFTER = 2

interface Candidate {
  commit: Commit
  samples: CandidateSample[]
}

function simulateNoiseAware(cfg: CampaignConfig, rng: Rng): CampaignResult {
  const CLASS = 'sim'
  const workers = workerIds(cfg.workers)
  const forgers = new Set(workers.slice(0, cfg.forgers))
  const commits = new Map<string, Commit>()
  const measured = new Map<string, number[]>() // commit → every val_bpb reported for it
  const baselineRuns = new Map<string, number[]>() // commit → the runs of baseline units only
  const unchosenRuns = new Map<string, number[]>() // commit → baseline and verification runs: the noise floor's data
  const open: Candidate[] = []
  const queue: QueuedUnit[] = []
  const rebaseIdeas = new Map<string, Commit>() // rebase unit → the stale candidate it re-implements
  const ideas: Idea[] = []
  const merges: MergeRecord[] = []
  const runsByKind = { baseline: 0, explore: 0, verify: 0, rebase: 0 }
  let nextId = 0
  let runs = 0
  let rounds = 0
  let staleRuns = 0
  let sigmaEstimate: number | null = null
  // The coordinator's policy for forgers: two claims above the cap that others did not reproduce
  // make a worker suspect, and nobody spends runs verifying its candidates any more.
  const unreproduced = new Map<string, number>()
  const defended = cfg.forgeryDefences ?? true
  const suspects = () => (defended ? [...unreproduced].filter(([, n]) => n >= SUSPECT_AFTER).map(([w]) => w) : [])

  const parentRunsOf = (commit: string): number[] => (cfg.parentSamples === 'all' ? measured : baselineRuns).get(commit) ?? []
  const addCommit = (c: Omit<Commit, 'id'>): Commit => {
    const commit = { ...c, id: `c${nextId++}` }
    commits.set(commit.id, commit)
    return commit
  }
  const record = (commit: string, value: number) => {
    const list = measured.get(commit)
    if (list) list.push(value)
    else measured.set(commit, [value])
  }
  const newUnit = (u: Omit<QueuedUnit, 'id' | 'leasedTo' | 'queuedAt'>): QueuedUnit => {
    const unit: QueuedUnit = { ...u, id: `u${nextId++}`, leasedTo: null, queuedAt: rounds }
    queue.push(unit)
    return unit
  }
  const removeUnits = (keep: (u: QueuedUnit) => boolean) => {
    const kept = queue.filter(keep)
    queue.length = 0
    queue.push(...kept)
  }
  const openCandidate = (commit: Commit): Candidate => {
    const c = { commit, samples: [] }
    open.push(c)
    return c
  }

  let best = addCommit({ trueValue: cfg.startValBpb, parent: null, idea: null, author: null, forged: false })

  while (runs < cfg.runs) {
    rounds++
    // 1. Every idle worker leases the most valuable unit (rotating who asks first).
    const leased: { worker: string; unit: QueuedUnit }[] = []
    for (let i = 0; i < workers.length && runs + leased.length < cfg.runs; i++) {
      const worker = workers[(i + rounds) % workers.length]
      const choice = nextUnit({
        worker: { id: worker, contributorId: worker, hardwareClass: CLASS },
        best: best.id,
        baselines: { [CLASS]: parentRunsOf(best.id).length },
        units: queue,
        hypotheses: [],
        suspectWorkerIds: suspects(),
        settings: { baselineRuns: cfg.baselineRuns, allowSelfVerification: cfg.settings.allowSelfVerification ?? false },
      })
      // Exploration is always allowed here (explorationAllowed is not set).
      if (choice.action === 'none') throw new Error(`the scheduler offered nothing: ${choice.reason}`)
      const unit =
        choice.action === 'lease' ? queue.find(u => u.id === choice.unitId)!
        : choice.kind === 'baseline' ? newUnit({ kind: 'baseline', commit: choice.commit, hardwareClass: choice.hardwareClass })
        : newUnit({ kind: 'explore', commit: choice.parentCommit, hardwareClass: null, hypothesisId: choice.hypothesisId })
      unit.leasedTo = worker
      leased.push({ worker, unit })
    }

    // 2. Everyone trains for one budget and reports.
    for (const { worker, unit } of leased) {
      runs++
      runsByKind[unit.kind]++
      const forge = forgers.has(worker) ? cfg.forgeSigmas * cfg.sigma : 0
      const sample = (commit: Commit, forged: number) => {
        const value = rng.normal(commit.trueValue, cfg.sigma) - forged
        record(commit.id, value)
        if (unit.kind === 'baseline' || unit.kind === 'verify') unchosenRuns.set(commit.id, [...(unchosenRuns.get(commit.id) ?? []), value])
        return { valBpb: value, workerId: worker, contributorId: worker, trainingSeconds: cfg.settings.budgetSeconds }
      }
      if (unit.kind === 'baseline') {
        const { valBpb } = sample(commits.get(unit.commit)!, 0)
        baselineRuns.set(unit.commit, [...(baselineRuns.get(unit.commit) ?? []), valBpb])
      }
      else if (unit.kind === 'verify') open.find(c => c.commit.id === unit.commit)?.samples.push(sample(commits.get(unit.commit)!, 0))
      else {
        // explore: a fresh idea on the unit's parent; rebase: a stale candidate's idea re-implemented
        // on the best the worker receives.
        const parent = unit.kind === 'rebase' ? best : commits.get(unit.commit)!
        const stale = rebaseIdeas.get(unit.id)
        const idea = stale?.idea ?? drawIdea(rng, cfg.effects, cfg.effectSigma ?? cfg.sigma)
        if (!stale) {
          idea.forged = forgers.has(worker)
          ideas.push(idea)
        }
        const commit = addCommit({ trueValue: parent.trueValue + idea.effect, parent: parent.id, idea, author: worker, forged: forge > 0 })
        openCandidate(commit).samples.push(sample(commit, forge))
      }
    }
    const done = new Set(leased.map(l => l.unit.id))
    removeUnits(u => !done.has(u.id))

    // 3. The coordinator decides every open candidate on what is now known.
    const noise = noiseFloorOfGroups([...(defended ? unchosenRuns : measured).values()], cfg.priorSigma)
    sigmaEstimate = noise.measuredSigma
    const toDecide = [...open]
    for (let candidate = toDecide.shift(); candidate; candidate = toDecide.shift()) {
      const { commit } = candidate
      const decision = decide({
        candidate: { authorId: commit.author!, samples: candidate.samples, linesDelta: 1 },
        parentSamples: parentRunsOf(commit.parent!),
        sigma: noise.sigma,
        parentIsBest: commit.parent === best.id,
        settings: cfg.settings,
      })
      commit.idea!.lastDecision = 'reason' in decision ? `${decision.kind}:${decision.reason}` : decision.kind
      if (decision.kind === 'await-baseline') continue
      if (decision.kind === 'verify') {
        const queued = queue.filter(u => u.kind === 'verify' && u.commit === commit.id)
        // As the coordinator does (units/judge.ts): queued units take the decision's latest exclusions.
        for (const u of queued) u.excludedContributorIds = decision.excludeContributorIds
        for (let i = queued.length; i < decision.needed; i++)
          newUnit({ kind: 'verify', commit: commit.id, hardwareClass: CLASS, candidateWorkerId: commit.author, candidateContributorId: commit.author,
            excludedContributorIds: decision.excludeContributorIds, measuredBy: candidate.samples.map(s => s.workerId) })
        continue
      }
      open.splice(open.indexOf(candidate), 1)
      removeUnits(u => !(u.kind === 'verify' && u.commit === commit.id))
      const idea = commit.idea!
      if (decision.kind === 'merge') {
        merges.push({ trueEffect: commit.trueValue - best.trueValue, forged: commit.forged, round: rounds })
        idea.outcome = 'merged'
        best = commit
        removeUnits(u => !(u.kind === 'baseline' && u.commit !== best.id))
      } else if (decision.kind === 'stale') {
        staleRuns += candidate.samples.length
        if (rng.chance(cfg.cleanMergeRate)) {
          // A clean three-way merge: a new, unmeasured commit on the best, verified like any other.
          const merged = addCommit({ trueValue: best.trueValue + idea.effect, parent: best.id, idea, author: commit.author, forged: commit.forged })
          toDecide.push(openCandidate(merged))
        } else {
          rebaseIdeas.set(newUnit({ kind: 'rebase', commit: best.id, hardwareClass: null }).id, commit)
        }
      } else {
        idea.outcome = 'closed'
        if (decision.kind === 'reject' && decision.reason === 'unreproduced-improvement')
          unreproduced.set(commit.author!, (unreproduced.get(commit.author!) ?? 0) + 1)
      }
    }
  }
  const bestRuns = measured.get(best.id) ?? []
  return {
    ratchet: 'noise-aware', workers: cfg.workers, sigma: cfg.sigma, runs, rounds, runsByKind, staleRuns, merges,
    ideas: outcomes(ideas, cfg.sigma), startTrue: cfg.startValBpb, endTrue: best.trueValue,
    endReported: bestRuns.length > 0 ? bestRuns.reduce((a, b) => a + b, 0) / bestRuns.length : NaN, sigmaEstimate,
  }
}

export function simulateCampaign(cfg: CampaignConfig): CampaignResult {
  const rng = createRng(cfg.seed)
  return cfg.ratchet === 'naive' ? simulateNaive(cfg, rng) : simulateNoiseAware(cfg, rng)
}

export interface SimulationSummary {
  campaigns: number
  runs: number
  merges: number
  /** Merges whose true effect was ≥ 0 (no better, or worse). */
  falseMerges: number
  falseAcceptShare: number
  /** Of the decided candidates with no effect, the share merged; and of those with no effect or a harmful one. */
  nullAcceptRate: number
  notBetterAcceptRate: number
  /** Of the decided candidates truly better by more than 2σ, the share merged; and of all better ones. */
  bigKeptRate: number
  realKeptRate: number
  runsPerMerge: number
  runsPerRealMerge: number
  /** Mean change of the best's true val_bpb over a campaign, in σ (negative: better). */
  driftSigmas: number
  /** Mean total true harm merged per campaign, in σ. */
  harmMergedSigmas: number
  /** Mean of (reported − true) val_bpb of the final best, in σ: how flattering the leaderboard is. */
  reportOptimismSigmas: number
  share: { verify: number; baseline: number; rebase: number; stale: number }
  realMergesPerGpuHour: number
  /** True val_bpb gained per GPU-hour and per wall-clock hour. */
  gainPerGpuHour: number
  gainPerWallHour: number
  /** Merges of forged candidates that were not truly better. */
  forgedFalseMerges: number
  /** Mean σ estimate at the end over the true σ. */
  sigmaEstimateRatio: number
}

const ratio = (a: number, b: number): number => (b === 0 ? NaN : a / b)

export function summarize(results: readonly CampaignResult[], budgetSeconds: number): SimulationSummary {
  const all = <T>(f: (r: CampaignResult) => T[]): T[] => results.flatMap(f)
  const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0)
  const avg = (xs: number[]): number => ratio(sum(xs), xs.length)
  const merges = all(r => r.merges)
  const ideas = all(r => r.ideas).filter(i => i.outcome !== 'open')
  const keptShare = (xs: IdeaOutcome[]) => ratio(xs.filter(i => i.outcome === 'merged').length, xs.length)
  const runs = sum(results.map(r => r.runs))
  const falseMerges = merges.filter(m => m.trueEffect >= 0).length
  const gpuHours = (runs * budgetSeconds) / 3600
  const wallHours = (sum(results.map(r => r.rounds)) * budgetSeconds) / 3600
  const gained = sum(results.map(r => r.startTrue - r.endTrue))
  const estimates = results.filter(r => r.sigmaEstimate !== null).map(r => r.sigmaEstimate! / r.sigma)
  return {
    campaigns: results.length,
    runs,
    merges: merges.length,
    falseMerges,
    falseAcceptShare: ratio(falseMerges, merges.length),
    nullAcceptRate: keptShare(ideas.filter(i => i.sigmas === 0)),
    notBetterAcceptRate: keptShare(ideas.filter(i => i.sigmas >= 0)),
    bigKeptRate: keptShare(ideas.filter(i => i.sigmas < -2)),
    realKeptRate: keptShare(ideas.filter(i => i.sigmas < 0)),
    runsPerMerge: ratio(runs, merges.length),
    runsPerRealMerge: ratio(runs, merges.length - falseMerges),
    driftSigmas: avg(results.map(r => (r.endTrue - r.startTrue) / r.sigma)),
    harmMergedSigmas: avg(results.map(r => sum(r.merges.map(m => Math.max(0, m.trueEffect))) / r.sigma)),
    reportOptimismSigmas: avg(results.map(r => (r.endReported - r.endTrue) / r.sigma)),
    share: {
      verify: ratio(sum(results.map(r => r.runsByKind.verify)), runs),
      baseline: ratio(sum(results.map(r => r.runsByKind.baseline)), runs),
      rebase: ratio(sum(results.map(r => r.runsByKind.rebase)), runs),
      stale: ratio(sum(results.map(r => r.staleRuns)), runs),
    },
    realMergesPerGpuHour: ratio(merges.length - falseMerges, gpuHours),
    gainPerGpuHour: ratio(gained, gpuHours),
    gainPerWallHour: ratio(gained, wallHours),
    forgedFalseMerges: merges.filter(m => m.forged && m.trueEffect >= 0).length,
    sigmaEstimateRatio: avg(estimates),
  }
}

import { nextUnit, verifyCredit, type QueuedUnit } from '../../coordinator/src/scheduler/next-unit.ts'
import { decide, type CandidateSample, type CarriedEvidence, type Decision, type ParentRun } from '../../coordinator/src/ratchet/decide.ts'
import { noiseFloorOfGroups } from '../../coordinator/src/ratchet/noise.ts'
import { biasedReporters, overclaimers } from '../../coordinator/src/ratchet/bias.ts'
import { unreproducedClaimants, type DecidedClaim } from '../../coordinator/src/ratchet/unreproduced.ts'
import { createRng, isCandidate, type Rng, type UnitKind } from '../../shared/src/index.ts'
import { realRateOf } from '../../coordinator/src/ratchet/sequential.ts'
import { carriedFrom, sequentialSettingsOf } from '../../coordinator/src/ratchet/decide-sequential.ts'
import { DEFAULT_RATCHET_SETTINGS, isSequential, poolsClasses, type RatchetPolicy, type RatchetSettings } from '../../coordinator/src/ratchet/settings.ts'
import { DEFAULT_EFFECTS, type EffectModel } from './simulate.ts'

/**
 * A grid campaign with known truth (issue 17), built to be independent of the policy under test:
 * several hardware classes of different sizes, σ and val_bpb level; contributors with one to
 * several workers, mostly on one class; per-worker noise and a few wild runs (heavy tails); changes
 * whose effect differs between classes and may change when carried onto a newer best (they
 * interact with what was merged meanwhile); runs of uneven length, so workers drift out of step.
 * Time is continuous: a worker that finishes reports, the coordinator decides, and the worker asks
 * the real scheduler (`nextUnit`) for its next unit. The ratchet is the real `decide`, with the
 * noise floor estimated from the runs as the coordinator does.
 *
 * The coordinator's part is played as production plays it (units/judge.ts, merge.ts, report.ts):
 * verification units per decision, a candidate re-decided when a run of it or a baseline of its
 * parent arrives, the stale path (a clean three-way merge with probability `cleanMergeRate`, else
 * a rebase unit), suspects after claims above the cap that others did not reproduce (ratchet/unreproduced.ts). With `redecideOnMove` the
 * pending candidates of a replaced best are re-decided as soon as it moves (the sequential
 * policy's coordinator does this: their queued verifications would otherwise run against a parent
 * that no longer matters).
 */

export interface GridConfig {
  seed: number
  /** Base σ of val_bpb; each class's is this times U(0.75, 1.3), each worker's a further U(0.85, 1.2). */
  sigma: number
  workers: number
  classes: number
  contributors: number
  /** The campaign ends after this many explorations, or `runs` runs of any kind, whichever first. */
  explorations: number
  runs?: number
  effects: EffectModel
  settings: RatchetSettings
  baselineRuns: number
  cleanMergeRate: number
  /** Chance, per merge in between, that a carried change's effect changes (× U(−0.25, 1)). */
  interaction: number
  /** Share of runs whose noise is 4 times larger. */
  outliers: number
  priorSigma: number
  redecideOnMove: boolean
  /**
   * How a carried candidate's evidence is had. Absent: the evidence the stale decision handed on,
   * fixed then (every class's under the pooled policies). `own-class` and `every-class`: recomputed
   * from its origin's runs at each decision, as the coordinator does (units/sequential-inputs.ts
   * carriedEvidenceOf; before session 14 from the origin's class alone, since then under the pooled
   * policies from every class), so runs of the origin that come back after it moved count too.
   */
  carryFromOrigin?: 'own-class' | 'every-class'
  /**
   * The suspect rule for claims above the cap: absent, production's (ratchet/unreproduced.ts, a
   * CUSUM over each contributor's decided claims); `two`, the rule before session 14's change (two
   * unreproduced claims, whatever came between).
   */
  unreproducedRule?: 'two'
  /** Keep each idea's decisions, one line each (`ideas[].trace`), to read where its runs went. */
  trace?: boolean
  /**
   * Absent or true, as the coordinator does since session 15 (units/judge.ts closingReason): a
   * verification run in flight when its candidate is closed (rejected, discarded, or gone stale
   * with its evidence dropped, which only `fixed` does) ends then: its worker takes its next unit
   * at once, the time it ran is spent, nothing is measured (`cancelledRuns`). False: every run
   * goes on to its report, as before; seeded results are then those of before session 15.
   */
  cancelClosedRuns?: boolean
}

/** `moved`: verification runs made while the candidate's parent was no longer the best. */
interface Idea { sigmas: number; effect: number; perClass: number[]; outcome: 'open' | 'merged' | 'closed'; last?: string; verifies: number; moved: number; hops: number; trace?: string[] }
interface Commit { id: string; parent: string | null; value: number[]; idea: Idea | null; mergesAtParent: number }
interface Run { commit: string; cls: number; value: number; worker: string; contributor: string; kind: UnitKind; wild: boolean }
interface Candidate {
  commit: Commit
  cls: number
  author: string
  authorWorker: string
  pending: boolean
  /** It went the stale way (its change onto a newer best). */
  moved?: boolean
  /** Rejected or discarded: nothing reads its runs again. */
  closed?: boolean
  /** The candidate it was carried from. */
  from?: Candidate
  carried?: CarriedEvidence
  carriedClaim?: { authorId: string; improvement: number }
}
interface Worker { id: string; contributor: string; cls: number; noise: number }
/** `demandFor`: a parent run on demand, for this candidate (the sequential policy's `parentOnDemand`). */
type Unit = QueuedUnit & { origin?: Candidate; demandFor?: string }

export interface GridResult {
  runs: number
  explorations: number
  wallSeconds: number
  workers: number
  runsByKind: Record<Run['kind'], number>
  /** Runs of candidates that went stale (counted when they did), and of those whose evidence was dropped. */
  staleRuns: number
  staleRunsDropped: number
  /** Claims that passed the first look (earned a verification) and went stale before a verdict. */
  screenedClaims: number
  screenedStale: number
  /**
   * Verification runs that came back after their candidate was decided or had moved onto a newer
   * best (its verdict or its carried evidence was taken without them), and of those, the runs of a
   * candidate that had moved.
   */
  lateRuns: number
  lateRunsMoved: number
  /** Late runs that counted for nothing: of a closed candidate, or under `fixed` of a moved one (its evidence dropped). What `cancelClosedRuns` stops. */
  lateRunsWasted: number
  /** Verification runs ended early because their candidate was closed (`cancelClosedRuns`); not in `runs`, nothing measured. */
  cancelledRuns: number
  /** GPU-seconds the cancelled runs would still have taken to their report: freed for other work. */
  cancelledSeconds: number
  /** Contributors flagged as suspects (claims above the cap that others did not reproduce, `unreproducedRule`; all honest here), and their candidates left waiting for the maintainer. */
  suspects: string[]
  suspectsWaiting: number
  /**
   * Why (bench/ratchet/grid-suspects.ts): each `unreproduced-improvement` rejection, with the
   * author's claim in σ of its class, whether its own run was a wild one (4 × the noise), the
   * change's true effect in σ and whether the candidate was carried (its cap from an earlier
   * claim); and each contributor's explorations (claims).
   */
  unreproducedClaims: { author: string; claimSigma: number; wild: boolean; trueSigma: number; carried: boolean }[]
  claimsBy: Record<string, number>
  /** What production's other suspect rules (ratchet/bias.ts) say of the campaign's runs at its end, σ floored at the prior as units/suspects.ts does. */
  biased: string[]
  overclaiming: string[]
  /** Runs of other classes' baselines than the class of the merged candidate. */
  merges: { trueEffect: number }[]
  ideas: { sigmas: number; /** The effect at the end, in bpb (carried changes may have changed on the way). */ effect: number; outcome: Idea['outcome']; last?: string; verifies: number; moved: number; hops: number; trace?: string[] }[]
  gain: number
}

const CLASS = (k: number) => `class${k}`

function world(cfg: GridConfig, rng: Rng) {
  const sigmas = Array.from({ length: cfg.classes }, () => cfg.sigma * rng.uniform(0.75, 1.3))
  // Far above what a campaign of additive gains can take away, so val_bpb stays positive.
  const levels = Array.from({ length: cfg.classes }, () => 20 + rng.uniform(-0.1, 0.1))
  const weights = Array.from({ length: cfg.classes }, () => rng.uniform(0.5, 2))
  const pick = () => {
    let u = rng.next() * weights.reduce((a, b) => a + b, 0)
    for (let k = 0; k < weights.length; k++) if ((u -= weights[k]) < 0) return k
    return weights.length - 1
  }
  const home = Array.from({ length: cfg.contributors }, pick)
  const workers: Worker[] = Array.from({ length: cfg.workers }, (_, i) => {
    const contributor = i < cfg.contributors ? i : rng.int(cfg.contributors)
    return { id: `w${i}`, contributor: `c${contributor}`, cls: rng.chance(0.75) ? home[contributor] : pick(), noise: rng.uniform(0.85, 1.2) }
  })
  const share = sigmas.map((_, k) => workers.filter(w => w.cls === k).length / workers.length)
  return { sigmas, levels, workers, share }
}

function drawIdea(rng: Rng, m: EffectModel, sigma: number, classes: number): Idea {
  const u = rng.next()
  const sigmas = u < m.nullShare ? 0 : u < m.nullShare + m.harmfulShare ? rng.uniform(...m.harmfulSigmas) : -rng.uniform(...m.improvementSigmas)
  // A change helps some GPUs more than others (a larger batch on a larger card, say).
  const perClass = Array.from({ length: classes }, () => Math.max(0, 1 + 0.3 * rng.normal()))
  return { sigmas, effect: sigmas * sigma, perClass, outcome: 'open', verifies: 0, hops: 0, moved: 0 }
}

/** Issue 17's mature campaign: 1 % of ideas real, 59 % null, 40 % harmful. */
export const ONE_PERCENT_REAL: EffectModel = { ...DEFAULT_EFFECTS, nullShare: 0.59, harmfulShare: 0.4 }

/**
 * The campaign every grid bench plays (grid-run, grid-why, grid-try, grid-suspects): σ 0.038, 1,000
 * explorations, 16 workers on 4 classes of 8 contributors (one worker: one class and contributor,
 * verifying its own), 4 baselines, a clean three-way merge 4 times in 5.
 */
export function gridCampaign(o: { seed: number; policy: RatchetPolicy; effects?: EffectModel; workers?: number; baselineRuns?: number; sequential?: RatchetSettings['sequential'] } &
  Pick<GridConfig, 'carryFromOrigin' | 'unreproducedRule' | 'trace' | 'cancelClosedRuns'>): GridConfig {
  const workers = o.workers ?? 16
  const one = workers === 1
  return {
    seed: o.seed, sigma: 0.038, workers, classes: one ? 1 : 4, contributors: one ? 1 : 8, explorations: 1000, effects: o.effects ?? DEFAULT_EFFECTS,
    settings: { ...DEFAULT_RATCHET_SETTINGS, policy: o.policy, allowSelfVerification: one, ...(o.sequential ? { sequential: o.sequential } : {}) }, baselineRuns: o.baselineRuns ?? 4,
    cleanMergeRate: 0.8, interaction: 0.15, outliers: 0.03, priorSigma: 0.01, redecideOnMove: false,
    carryFromOrigin: o.carryFromOrigin, unreproducedRule: o.unreproducedRule, trace: o.trace, cancelClosedRuns: o.cancelClosedRuns,
  }
}

export function simulateGrid(cfg: GridConfig): GridResult {
  return new Grid(cfg).run()
}

class Grid {
  rng: Rng
  w: ReturnType<typeof world>
  commits = new Map<string, Commit>()
  runs: Run[] = []
  runsOf = new Map<string, Run[]>() // commit → runs
  /** Verification runs by verifier and author contributor (`verifier author`), as the verify_exchange table. */
  exchange = new Map<string, number>()
  candidates = new Map<string, Candidate>()
  queue: Unit[] = []
  ideas: Idea[] = []
  merges: { trueEffect: number }[] = []
  best: Commit
  mergeCount = 0
  nextId = 0
  now = 0
  unreproduced = new Map<string, number>()
  unreproducedClaims: GridResult['unreproducedClaims'] = []
  /** Decided claims (merged, rejected, discarded), with the number of their commit: the order they were made. */
  decidedClaims: (DecidedClaim & { at: number })[] = []
  flagged: { decided: number; ids: string[] } = { decided: 0, ids: [] }
  claimsBy: Record<string, number> = {}
  noiseCache = new Map<number, number>()
  out = { staleRuns: 0, staleRunsDropped: 0, screenedClaims: 0, screenedStale: 0, explorations: 0, lateRuns: 0, lateRunsMoved: 0, lateRunsWasted: 0, cancelledRuns: 0, cancelledSeconds: 0 }
  /** Runs in flight: when each ends, on which worker, of which unit; `cancelled`: ended early by cancelRunning. */
  busy: { at: number; worker: Worker; unit: Unit; cancelled?: boolean }[] = []
  runsByKind = { baseline: 0, verify: 0, explore: 0, rebase: 0 }
  screened = new Set<string>()

  constructor(readonly cfg: GridConfig) {
    this.rng = createRng(cfg.seed)
    this.w = world(cfg, this.rng)
    this.best = this.addCommit({ parent: null, value: [...this.w.levels], idea: null, mergesAtParent: 0 })
  }

  addCommit(c: Omit<Commit, 'id'>): Commit {
    const commit = { ...c, id: `k${this.nextId++}` }
    this.commits.set(commit.id, commit)
    return commit
  }

  run(): GridResult {
    const { cfg } = this
    const budget = cfg.settings.budgetSeconds
    // (finish time, worker, unit): a small array is enough for ≤ 64 workers.
    const busy = this.busy
    const idle: Worker[] = []
    const start = (worker: Worker, at: number) => {
      const unit = this.lease(worker)
      if (!unit) return idle.push(worker)
      busy.push({ at: at + budget * this.rng.uniform(1.02, 1.2), worker, unit })
    }
    for (const worker of this.w.workers) start(worker, budget * this.rng.uniform(0, 0.2))
    const total = () => this.runs.length
    while (busy.length && this.out.explorations < cfg.explorations && total() < (cfg.runs ?? Infinity)) {
      busy.sort((a, b) => a.at - b.at)
      const { at, worker, unit, cancelled } = busy.shift()!
      this.now = at
      // A cancelled run reports nothing; its worker is free now. (With nothing cancelled, nothing
      // here changes the order of the rng's draws: `cancelClosedRuns: false` keeps the seeded numbers.)
      if (cancelled) this.out.cancelledRuns++
      else this.report(worker, unit)
      start(worker, at)
      for (const w of idle.splice(0)) start(w, at)
    }
    const gain = this.trueValue(this.commits.get('k0')!) - this.trueValue(this.best)
    return {
      runs: total(), explorations: this.out.explorations, wallSeconds: this.now, workers: cfg.workers, runsByKind: this.runsByKind,
      staleRuns: this.out.staleRuns, staleRunsDropped: this.out.staleRunsDropped, screenedClaims: this.screened.size, screenedStale: this.out.screenedStale, lateRuns: this.out.lateRuns, lateRunsMoved: this.out.lateRunsMoved, lateRunsWasted: this.out.lateRunsWasted, cancelledRuns: this.out.cancelledRuns, cancelledSeconds: this.out.cancelledSeconds,
      unreproducedClaims: this.unreproducedClaims, claimsBy: this.claimsBy, ...this.biasRules(),
      suspects: this.suspects(), suspectsWaiting: [...this.candidates.values()].filter(c => c.pending && this.suspects().includes(c.author)).length,
      merges: this.merges, ideas: this.ideas.map(i => ({ sigmas: i.sigmas, effect: i.effect, outcome: i.outcome, last: i.last, verifies: i.verifies, moved: i.moved, hops: i.hops, trace: i.trace })), gain,
    }
  }

  biasRules(): { biased: string[]; overclaiming: string[] } {
    const sigmaOf = (cls: string) => Math.max(this.sigma(Number(cls.slice('class'.length))), this.cfg.priorSigma)
    const runs = this.runs.filter(r => r.kind === 'baseline' || r.kind === 'verify' || r.kind === 'explore')
      .map(r => ({ contributorId: r.contributor, hardwareClass: CLASS(r.cls), commit: r.commit, valBpb: r.value, claim: r.kind === 'explore' }))
    const biased = biasedReporters(runs.filter(r => !r.claim), sigmaOf).map(b => b.contributorId)
    const overclaiming = overclaimers(runs.filter(r => r.claim || !biased.includes(r.contributorId)), sigmaOf).map(g => g.contributorId)
    return { biased, overclaiming }
  }

  suspects(): string[] {
    if (this.cfg.unreproducedRule === 'two') return [...this.unreproduced].filter(([, n]) => n >= 2).map(([c]) => c)
    // As units/suspects.ts: once flagged, a contributor stays a suspect (the grid has no maintainer).
    if (this.flagged.decided !== this.decidedClaims.length) {
      const found = unreproducedClaimants([...this.decidedClaims].sort((a, b) => a.at - b.at))
      this.flagged = { decided: this.decidedClaims.length, ids: [...new Set([...this.flagged.ids, ...found])] }
    }
    return this.flagged.ids
  }

  /** The val_bpb the campaign cares about: each class's true value weighted by its share of workers. */
  trueValue(c: Commit): number {
    return c.value.reduce((s, v, k) => s + (v - this.w.levels[k]) * this.w.share[k], 0)
  }

  contributorsOn(cls: number): number {
    return new Set(this.w.workers.filter(w => w.cls === cls).map(w => w.contributor)).size
  }

  lease(worker: Worker): Unit | undefined {
    const { cfg } = this
    const self = cfg.settings.allowSelfVerification === true
    const bestRuns = (this.runsOf.get(this.best.id) ?? []).filter(r => r.cls === worker.cls && (r.kind === 'baseline' || r.kind === 'verify'))
    const choice = nextUnit({
      worker: { id: worker.id, contributorId: worker.contributor, hardwareClass: CLASS(worker.cls) },
      best: this.best.id,
      baselines: { [CLASS(worker.cls)]: bestRuns.length },
      units: this.queue,
      hypotheses: [],
      suspectContributorIds: this.suspects(),
      explorationAllowed: self || this.contributorsOn(worker.cls) >= 1 + (cfg.settings.minVerifierContributors ?? 1),
      settings: { baselineRuns: cfg.baselineRuns, allowSelfVerification: self },
      parentsOnDemand: [...new Set(this.queue.filter(u => u.demandFor !== undefined).map(u => u.commit))],
      baselineShares: self ? undefined : this.baselineShares(worker, bestRuns),
      outOfCredit: self ? undefined : this.outOfCredit(worker),
    })
    if (choice.action === 'none') return undefined
    const unit: Unit = choice.action === 'lease' ? this.queue.find(u => u.id === choice.unitId)!
      : choice.kind === 'baseline' ? this.newUnit({ kind: 'baseline', commit: choice.commit, hardwareClass: choice.hardwareClass })
      : this.newUnit({ kind: 'explore', commit: choice.parentCommit, hardwareClass: null, hypothesisId: null })
    unit.leasedTo = worker.id
    return unit
  }

  /** As units/reciprocity.ts outOfCredit: the authors of queued verifications this worker's contributor verified beyond its credit. */
  outOfCredit(worker: Worker): string[] {
    const me = worker.contributor
    const ex = (verifier: string, author: string) => this.exchange.get(`${verifier} ${author}`) ?? 0
    const authors = new Set(this.queue.filter(u => u.kind === 'verify' && u.candidateContributorId).map(u => u.candidateContributorId!))
    return [...authors].filter(a => a !== me && verifyCredit(ex(me, a), ex(a, me)) <= 0)
  }

  /** As units/assign.ts baselineShares: the best's runs on the worker's class by contributor (running baselines too), and the other contributors at work there. */
  baselineShares(worker: Worker, bestRuns: readonly Run[]): { byContributor: Record<string, number>; others: string[] } {
    const byContributor: Record<string, number> = {}
    const contributorOf = new Map(this.w.workers.map(w => [w.id, w.contributor]))
    const running = this.queue.filter(u => u.kind === 'baseline' && u.commit === this.best.id && u.hardwareClass === CLASS(worker.cls) && u.leasedTo !== null)
    for (const c of [...bestRuns.map(r => r.contributor), ...running.map(u => contributorOf.get(u.leasedTo!)!)]) byContributor[c] = (byContributor[c] ?? 0) + 1
    const suspects = new Set(this.suspects())
    const others = [...new Set(this.w.workers.filter(w => w.cls === worker.cls && w.contributor !== worker.contributor && !suspects.has(w.contributor)).map(w => w.contributor))]
    return { byContributor, others }
  }

  newUnit(u: Omit<Unit, 'id' | 'leasedTo' | 'queuedAt'>): Unit {
    const unit: Unit = { ...u, id: `u${this.nextId++}`, leasedTo: null, queuedAt: this.now }
    this.queue.push(unit)
    return unit
  }

  measure(worker: Worker, commit: Commit, kind: Run['kind']): Run {
    const wild = this.rng.chance(this.cfg.outliers)
    const sd = this.w.sigmas[worker.cls] * worker.noise * (wild ? 4 : 1)
    const run: Run = { commit: commit.id, cls: worker.cls, value: this.rng.normal(commit.value[worker.cls], sd), worker: worker.id, contributor: worker.contributor, kind, wild }
    this.runs.push(run)
    this.runsOf.set(commit.id, [...(this.runsOf.get(commit.id) ?? []), run])
    this.runsByKind[kind]++
    if (kind === 'baseline' || kind === 'verify') this.noiseCache.delete(worker.cls)
    return run
  }

  report(worker: Worker, unit: Unit): void {
    this.queue = this.queue.filter(u => u !== unit)
    if (unit.kind === 'baseline') {
      this.measure(worker, this.commits.get(unit.commit)!, 'baseline')
      for (const c of this.candidates.values()) if (c.pending && (c.cls === worker.cls || this.pooled) && c.commit.parent === unit.commit) this.judge(c)
      return
    }
    if (unit.kind === 'verify') {
      const c = this.candidates.get(unit.commit)!
      this.measure(worker, c.commit, 'verify')
      if (worker.contributor !== c.author) this.exchange.set(`${worker.contributor} ${c.author}`, (this.exchange.get(`${worker.contributor} ${c.author}`) ?? 0) + 1)
      c.commit.idea!.verifies++
      if (c.commit.parent !== this.best.id) c.commit.idea!.moved++
      if (c.pending) this.judge(c)
      else {
        this.out.lateRuns++
        if (c.moved) this.out.lateRunsMoved++
        if (c.closed || (c.moved && !isSequential(this.cfg.settings.policy))) this.out.lateRunsWasted++
      }
      return
    }
    if (unit.kind === 'explore') {
      this.out.explorations++
      this.claimsBy[worker.contributor] = (this.claimsBy[worker.contributor] ?? 0) + 1
    }
    const origin = unit.origin
    const parent = unit.kind === 'rebase' ? this.best : this.commits.get(unit.commit)!
    const idea = origin ? origin.commit.idea! : drawIdea(this.rng, this.cfg.effects, this.cfg.sigma, this.cfg.classes)
    if (!origin) this.ideas.push(idea)
    const commit = this.carry(idea, parent, origin?.commit)
    const c: Candidate = { commit, cls: worker.cls, author: worker.contributor, authorWorker: worker.id, pending: true,
      carried: origin?.carried, carriedClaim: origin ? this.claimOf(origin) : undefined, from: origin?.from }
    this.candidates.set(commit.id, c)
    this.measure(worker, commit, unit.kind)
    this.judge(c)
  }

  /** The commit of `idea` on `parent`; carried from `from`, its effect may have changed on the way. */
  carry(idea: Idea, parent: Commit, from?: Commit): Commit {
    if (from) idea.hops++
    if (from) for (let i = from.mergesAtParent; i < this.mergeCount; i++) if (this.rng.chance(this.cfg.interaction)) idea.effect *= this.rng.uniform(-0.25, 1)
    const value = parent.value.map((v, k) => v + idea.effect * idea.perClass[k])
    return this.addCommit({ parent: parent.id, value, idea, mergesAtParent: this.mergeCount })
  }

  claimOf(c: Candidate): { authorId: string; improvement: number } {
    const own = (this.runsOf.get(c.commit.id) ?? []).filter(r => r.cls === c.cls && r.contributor === c.author && isCandidate(r.kind))
    const parent = this.parentRuns(c)
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length
    const improvement = own.length && parent.length ? mean(parent.map(r => r.valBpb)) - mean(own.map(r => r.value)) : 0
    return { authorId: c.author, improvement: Math.max(improvement, c.carriedClaim?.improvement ?? -Infinity) }
  }

  parentRuns(c: Candidate, cls = c.cls): ParentRun[] {
    return (this.runsOf.get(c.commit.parent!) ?? []).filter(r => r.cls === cls && (r.kind === 'baseline' || r.kind === 'verify'))
      .map(r => ({ valBpb: r.value, contributorId: r.contributor }))
  }

  sigma(cls: number): number {
    let s = this.noiseCache.get(cls)
    if (s === undefined) {
      const groups = new Map<string, number[]>()
      for (const r of this.runs) if (r.cls === cls && (r.kind === 'baseline' || r.kind === 'verify')) groups.set(r.commit, [...(groups.get(r.commit) ?? []), r.value])
      s = noiseFloorOfGroups([...groups.values()], this.cfg.priorSigma).sigma
      this.noiseCache.set(cls, s)
    }
    return s
  }

  realRate(): number {
    const decided = this.ideas.filter(i => i.outcome !== 'open')
    return realRateOf(decided.filter(i => i.outcome === 'merged').length, decided.length, sequentialSettingsOf(this.cfg.settings.policy, this.cfg.settings.sequential))
  }

  /** `pooled` and `parallel`: verifications go to any class, and every class's runs are evidence (all classes are approved here). */
  get pooled(): boolean {
    return poolsClasses(this.cfg.settings.policy)
  }

  /** What `o`'s runs hand on to its change carried onward, as units/sequential-inputs.ts carriedEvidenceOf recomputes it. */
  carriedFromOrigin(o: Candidate, hops = 0, without?: string): CarriedEvidence | undefined {
    const further = o.from && hops < 20 ? this.carriedFromOrigin(o.from, hops + 1, without) : o.carried
    const authors = new Set<string>()
    for (let e: Candidate | undefined = o, i = 0; e && i <= 20; e = e.from, i++) authors.add(e.author)
    const seq = sequentialSettingsOf(this.cfg.settings.policy, this.cfg.settings.sequential)
    const samplesOn = (cls: number): CandidateSample[] => (this.runsOf.get(o.commit.id) ?? []).filter(r => r.cls === cls && r.contributor !== without)
      .map(r => ({ valBpb: r.value, workerId: r.worker, contributorId: r.contributor, trainingSeconds: this.cfg.settings.budgetSeconds }))
    const parentRuns = (cls = o.cls) => this.parentRuns(o, cls).filter(r => r.contributorId !== without)
    const elsewhere = this.pooled && this.cfg.carryFromOrigin === 'every-class' ? this.w.sigmas.map((_, k) => k).filter(k => k !== o.cls)
      .map(k => ({ hardwareClass: CLASS(k), samples: samplesOn(k), parentRuns: parentRuns(k), sigma: this.sigma(k) })).filter(k => k.samples.length > 0) : []
    return carriedFrom(samplesOn(o.cls), parentRuns(), this.sigma(o.cls), authors, further, seq, elsewhere)
  }

  judge(c: Candidate): void {
    if (this.cfg.carryFromOrigin !== undefined && c.from) c.carried = this.carriedFromOrigin(c.from)
    const samplesOn = (cls: number): CandidateSample[] => (this.runsOf.get(c.commit.id) ?? []).filter(r => r.cls === cls)
      .map(r => ({ valBpb: r.value, workerId: r.worker, contributorId: r.contributor, trainingSeconds: this.cfg.settings.budgetSeconds }))
    const samples = samplesOn(c.cls)
    const elsewhere = this.pooled ? this.w.sigmas.map((_, k) => k).filter(k => k !== c.cls)
      .map(k => ({ hardwareClass: CLASS(k), samples: samplesOn(k), parentRuns: this.parentRuns(c, k), sigma: this.sigma(k) })).filter(k => k.samples.length > 0) : undefined
    const parentRuns = this.parentRuns(c)
    const d = decide({
      candidate: { authorId: c.author, samples, linesDelta: 1, carriedClaim: c.carriedClaim, carried: c.carried,
        carriedWithout: this.cfg.carryFromOrigin !== undefined && c.from ? k => this.carriedFromOrigin(c.from!, 0, k) : undefined },
      parentSamples: parentRuns.map(r => r.valBpb), parentRuns, sigma: this.sigma(c.cls), parentIsBest: c.commit.parent === this.best.id, elsewhere,
      settings: this.cfg.settings, realRate: this.realRate(),
    })
    this.apply(c, d, samples.length + (elsewhere ?? []).reduce((n, k) => n + k.samples.length, 0))
  }

  apply(c: Candidate, d: Decision, n: number): void {
    if (this.cfg.trace) (c.commit.idea!.trace ??= []).push(`${(this.now / this.cfg.settings.budgetSeconds).toFixed(2)} ${c.commit.id}<-${c.commit.parent} best=${this.best.id} cls${c.cls} eff=${(c.commit.idea!.effect / this.cfg.sigma).toFixed(2)} ${d.kind} ${'needed' in d ? d.needed : ''} ${d.message.slice(0, 160)}`)
    c.commit.idea!.last = d.kind + ':' + ('reason' in d ? d.reason : '') + ':' + d.message.slice(0, 60)
    if (d.kind === 'await-baseline' || d.kind === 'hold') return
    if (d.kind === 'verify') return this.verify(c, d)
    c.pending = false
    if (d.kind !== 'stale' && (d.kind !== 'merge' || c.commit.parent === this.best.id))
      this.decidedClaims.push({ contributorId: c.author, unreproduced: d.kind === 'reject' && d.reason === 'unreproduced-improvement', at: Number(c.commit.id.slice(1)) })
    this.queue = this.queue.filter(u => !(u.kind === 'verify' && u.commit === c.commit.id) && !(u.demandFor === c.commit.id && u.leasedTo === null))
    const idea = c.commit.idea!
    if (d.kind === 'merge') {
      if (c.commit.parent !== this.best.id) return this.stale(c, undefined, n)
      this.merges.push({ trueEffect: this.trueValue(c.commit) - this.trueValue(this.best) })
      idea.outcome = 'merged'
      this.best = c.commit
      this.mergeCount++
      // Baselines of the old best go; parent runs on demand stay for the candidates that asked.
      this.queue = this.queue.filter(u => u.kind !== 'baseline' || u.demandFor !== undefined)
      if (this.cfg.redecideOnMove) for (const o of [...this.candidates.values()]) if (o.pending) this.judge(o)
      return
    }
    if (d.kind === 'stale') return this.stale(c, d.carry, n)
    idea.outcome = 'closed'
    c.closed = true
    this.cancelRunning(c)
    if (d.kind === 'reject' && d.reason === 'unreproduced-improvement') {
      this.unreproduced.set(c.author, (this.unreproduced.get(c.author) ?? 0) + 1)
      const chain: Candidate[] = []
      for (let o: Candidate | undefined = c; o; o = o.from) chain.push(o)
      const own = chain.flatMap(o => (this.runsOf.get(o.commit.id) ?? []).filter(r => r.contributor === o.author && isCandidate(r.kind)))
      this.unreproducedClaims.push({ author: c.author, claimSigma: this.claimOf(c).improvement / this.sigma(c.cls), wild: own.some(r => r.wild),
        trueSigma: (this.trueValue(c.commit) - this.trueValue(this.commits.get(c.commit.parent!)!)) / this.cfg.sigma, carried: c.carriedClaim !== undefined })
    }
  }

  verify(c: Candidate, d: Extract<Decision, { kind: 'verify' }>): void {
    this.screened.add(c.commit.id)
    const queued = this.queue.filter(u => u.kind === 'verify' && u.commit === c.commit.id)
    for (const u of queued) u.excludedContributorIds = d.excludeContributorIds
    for (let i = queued.length; i < d.needed; i++)
      this.newUnit({ kind: 'verify', commit: c.commit.id, hardwareClass: this.pooled ? null : CLASS(c.cls), candidateWorkerId: c.authorWorker, candidateContributorId: c.author,
        excludedContributorIds: d.excludeContributorIds, measuredBy: (this.runsOf.get(c.commit.id) ?? []).map(r => r.worker) })
    const demanded = this.queue.filter(u => u.demandFor === c.commit.id).length
    for (let i = demanded; i < (d.parentRuns ?? 0); i++)
      this.newUnit({ kind: 'baseline', commit: c.commit.parent!, hardwareClass: CLASS(c.cls),
        excludedContributorIds: this.cfg.settings.allowSelfVerification ? [] : [c.author, ...(c.carriedClaim ? [c.carriedClaim.authorId] : [])] }).demandFor = c.commit.id
  }

  /** Ends now every verification of `c` in flight (`cancelClosedRuns`): the coordinator's cancel, told to the worker at once. */
  cancelRunning(c: Candidate): void {
    if (this.cfg.cancelClosedRuns === false) return
    for (const b of this.busy) {
      if (b.cancelled || b.unit.kind !== 'verify' || b.unit.commit !== c.commit.id) continue
      this.out.cancelledSeconds += b.at - this.now
      Object.assign(b, { at: this.now, cancelled: true })
    }
  }

  /** The stale path (units/merge.ts mergeStale): a clean three-way merge onto the best, or a rebase unit. */
  stale(c: Candidate, carry: CarriedEvidence | undefined, n: number): void {
    c.moved = true
    // Under the sequential policies a moved candidate's runs feed the evidence it carried (recomputed
    // from its origin's runs, `carryFromOrigin`); under `fixed` they count for nothing.
    if (!isSequential(this.cfg.settings.policy)) this.cancelRunning(c)
    this.out.staleRuns += n
    if (!carry) this.out.staleRunsDropped += n
    if (this.screened.has(c.commit.id)) this.out.screenedStale++
    const origin = { ...c, carried: carry, from: c }
    if (!this.rng.chance(this.cfg.cleanMergeRate)) {
      this.newUnit({ kind: 'rebase', commit: this.best.id, hardwareClass: null }).origin = origin
      return
    }
    const commit = this.carry(c.commit.idea!, this.best, c.commit)
    const merged: Candidate = { commit, cls: c.cls, author: c.author, authorWorker: c.authorWorker, pending: true, carried: carry, carriedClaim: this.claimOf(c), from: c }
    this.candidates.set(commit.id, merged)
    this.judge(merged)
  }
}

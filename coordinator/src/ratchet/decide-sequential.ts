import { mean } from './stats.ts'
import type { CandidateSample, CarriedEvidence, ClassRuns, Decision, ParentRun, RatchetInput } from './verdict-types.ts'
import { contradicted, describe, everyoneElse, evidenceOf, fmt, signed, verifierContributors, type Measured } from './evidence.ts'
import { boundaries, combine, DEFAULT_SEQUENTIAL, discounted, estimateOf, PARALLEL_SEQUENTIAL, withoutWild, logLikelihoodRatio, parentRunsWanted, realRateOf, type EffectEstimate, type SequentialSettings } from './sequential.ts'
import type { RatchetPolicy, RatchetSettings } from './settings.ts'

/**
 * The `sequential` policy's verdict (issue 17) for a candidate with runs and a parent with
 * baselines; sanity, the class's approval, failed verifications and the cap were settled before
 * (decide.ts), and simplifications keep the fixed rule.
 *
 * One sequential probability ratio test (sequential.ts) runs from the claim on: the author's run is
 * its first observation and every verification the next; the candidate is discarded as soon as the
 * log likelihood ratio falls to the lower boundary (so the screen is the test's first look), and
 * merges once it reaches the upper one, which the campaign's observed rate of real gains sets. A
 * candidate carried onto a newer best starts from the evidence its origin gathered, weighted down
 * (`carryWeight`), instead of from nothing. Around the test the issue-15 guards stay as they were:
 * at least `minVerifierContributors` distinct other contributors; their runs alone clear the
 * screen's bar; the win holds at the verdict's z without the runs of any one of them; a claim
 * above the cap counts for nothing.
 *
 * Under `pooled` the verifications on the other approved classes (`m.elsewhere`) are evidence too:
 * each class's Δ against that class's own parent runs, in units of its own σ, inverse-variance
 * pooled and expressed in the candidate's class's σ. Numbers are never compared across classes;
 * a change's effect is. The guards count every class's contributors and leave each one out of
 * every class at once.
 *
 * `parallel` is `pooled` with PARALLEL_SEQUENTIAL's knobs: several runs per look, a candidate whose
 * parent was replaced moved onto the best at its next look, and a wild run tamed (`wildSigmas`).
 */
export function judgeSequential(input: RatchetInput, m: Measured): Decision {
  const { candidate, sigma, settings } = input
  const seq = sequentialSettingsOf(settings.policy, settings.sequential)
  const selfOk = settings.allowSelfVerification === true
  const claim = m.author.length > 0 ? evidenceOf(m.author, m.parentSamples, sigma, settings, 'author') : undefined
  const aboveCap = (claim !== undefined && -claim.delta > settings.maxImprovement) || m.carriedAboveCap
  // Above the cap the author's word counts for nothing, as under the fixed rule.
  const used = aboveCap ? m.independent : candidate.samples
  const carried = candidate.carried
  const others = (s: CandidateSample) => !m.authors.has(s.contributorId)
  const all = withCarried(used, m.parentSamples, sigma, aboveCap ? carried?.independent : carried?.all, seq, m.elsewhere, aboveCap ? others : () => true, () => true)
  const independent = withCarried(m.independent, m.parentSamples, sigma, carried?.independent, seq, m.elsewhere, others, () => true)
  // The parent's runs on every class the verdict pools: whose they are goes with a carried change.
  const parentRunsEverywhere = () => [...m.parentRuns, ...m.elsewhere.flatMap(k => k.parentRuns)]
  // Every other contributor's run of C, on any class the verdict pools: the guards' witnesses.
  const witnessed: Measured = { ...m, independent: [...m.independent, ...m.elsewhere.flatMap(k => k.samples.filter(others))] }
  const elsewhereRuns = m.elsewhere.reduce((n, k) => n + k.samples.length, 0)
  const bounds = boundaries(input.realRate ?? realRateOf(0, 0, seq), seq)
  const llr = all ? logLikelihoodRatio(all, seq.gainSigmas * sigma) : 0
  const evidence = used.length > 0 ? evidenceOf(used, m.parentSamples, sigma, settings, aboveCap ? 'independent' : 'all') : claim!
  const classes = m.elsewhere.filter(k => k.samples.length > 0).length
  const pooledOver = classes ? `, pooled with ${elsewhereRuns} run(s) on ${classes} other class(es)` : ''
  const text = `log LR ${llr.toFixed(2)} for a ${seq.gainSigmas}σ gain (merge at ${bounds.upper.toFixed(2)}, discard at ${bounds.lower.toFixed(2)})${pooledOver}; ${describe(evidence)}`
  const verifications = aboveCap || !selfOk ? witnessed.independent.length : candidate.samples.length + elsewhereRuns - (m.author.length > 0 ? 1 : 0)
  const lost = (why: string): Decision => aboveCap
    ? { kind: 'reject', reason: 'unreproduced-improvement', evidence, message: `rejected: a claimed improvement above the cap ${fmt(settings.maxImprovement)} was not reproduced by other contributors: ${why}; ${text}` }
    : contradicted({ kind: 'discard', reason: verifications === 0 ? 'not-promising' : why.startsWith('not decisive') ? 'not-confirmed' : 'not-reproduced', evidence,
      message: `discarded: ${why}; ${text}` }, m.author, m.independent, sigma, settings)

  // The first look screens the claim as the fixed rule does before the test: most ideas are
  // neutral or harmful, and Wald's lower boundary alone let ~65 % of null claims into
  // verification (β = 0.1 at a 2σ alternative); a 1σ screen lets 16 % in (docs/RATCHET.md).
  const firstLook = claim && verifications === 0 && !aboveCap && !carried ? evidenceOf(m.author, m.parentSamples, sigma, { ...settings, z: settings.screenZ ?? settings.z }, 'author') : undefined
  if (firstLook && firstLook.delta > -firstLook.threshold)
    return { kind: 'discard', reason: 'not-promising', evidence: firstLook, message: `discarded: not promising at the first look; ${describe(firstLook)}` }
  // `carryOnMove`: a candidate whose parent was replaced would be verified on against a parent
  // nobody builds on, and its runs would reach the best only carried, at half weight, once it won
  // there; moved now, its next runs measure the commit that can merge. A claim above the cap is
  // not carried before others reproduced it (its verdict is a reject, not a carry).
  if (seq.carryOnMove && !input.parentIsBest && !aboveCap && verifications > 0 && llr > bounds.lower) return {
    kind: 'stale', simplification: false, evidence: claim, carry: carryOf(all, independent, witnessed.independent, parentRunsEverywhere(), carried),
    message: `stale: the best moved on while this was under test; its evidence goes with its change (${text})`,
  }
  if (llr <= bounds.lower) return verifications === 0 && !aboveCap
    ? { kind: 'discard', reason: 'not-promising', evidence, message: `discarded: not promising; ${text}` }
    : lost('not decisive: the evidence is against a gain')
  const more = moreRuns(settings, witnessed, aboveCap, verifications, llr < bounds.upper, carried, Math.min(seq.runsPerLook, seq.maxVerifications - verifications))
  if (more) return verifications >= seq.maxVerifications
    ? lost(`not decisive after ${verifications} verification runs`)
    : { kind: 'verify', reason: aboveCap ? 'above-cap' : m.author.length ? 'promising' : 'unmeasured', needed: more.needed, excludeContributorIds: more.exclude, evidence: claim,
      ...onDemand(seq, used.length, m.parentSamples.length, more.needed),
      message: `verify: not decisive yet, ${more.needed} more run(s) needed; ${text}` }
  const guard = guards(input, m, witnessed, independent, aboveCap, selfOk, seq)
  // The next run goes to someone else than the contributor the win rests on: handed to whoever
  // asked, it went on to the same one, and the grid's big gains lost to this guard had 11 of 12
  // runs by one contributor ("without one: nothing left").
  if (guard && typeof guard === 'object') return { kind: 'verify', reason: aboveCap ? 'above-cap' : 'promising', needed: 1,
    excludeContributorIds: [...m.authors, guard.restsOn], evidence: claim,
    ...onDemand(seq, used.length, m.parentSamples.length, 1),
    message: `verify: the win does not yet hold without the runs of ${guard.restsOn}; 1 more run by another contributor; ${text}` }
  if (guard) return lost(guard)
  // Verified against its own parent, which is no longer the best: its change goes onto the best
  // with this evidence, and the combination needs only a confirmation, not a fresh start.
  if (!input.parentIsBest) return {
    kind: 'stale', simplification: false, evidence: claim, carry: carryOf(all, independent, witnessed.independent, parentRunsEverywhere(), carried),
    message: `stale: a win on its parent, but the best moved on; its evidence goes with its change (${text})`,
  }
  const verifierIds = [...new Set(witnessed.independent.map(s => s.workerId))].sort()
  return {
    kind: 'merge', simplification: false, evidence, samples: [...candidate.samples], verifierIds,
    message: `merged: improvement, verified by ${verifierIds.length > 0 ? verifierIds.join(', ') : 'no other contributor'}; ${text}`,
  }
}

/** The verify decision's `parentRuns`, when the policy asks for parent runs on demand and some are wanted. */
function onDemand(seq: SequentialSettings, candidateRuns: number, parentRuns: number, needed: number): { parentRuns?: number } {
  const n = seq.parentOnDemand ? parentRunsWanted(candidateRuns, parentRuns, needed) : 0
  return n > 0 ? { parentRuns: n } : {}
}

/** The policy's sequential knobs: the defaults, `parallel`'s own, then the campaign's. */
export function sequentialSettingsOf(policy: RatchetPolicy | undefined, overrides?: Partial<SequentialSettings>): SequentialSettings {
  return { ...DEFAULT_SEQUENTIAL, ...(policy === 'parallel' ? PARALLEL_SEQUENTIAL : {}), ...overrides }
}

/**
 * The estimate of a set of runs against the parent's (wild runs tamed, `cutoff`·σ), pooled over the
 * other classes' runs `keep` and `keepParent` let through, then combined with carried evidence
 * weighted by `carryWeight`. Under `carryCheckZ` the carried evidence is left out when the runs on
 * this parent are worse than it by more than that many standard errors: the change no longer does
 * here what it did on its old parent (something merged meanwhile changed it).
 */
function withCarried(runs: readonly CandidateSample[], parentRuns: readonly number[], sigma: number, carried: EffectEstimate | null | undefined,
  seq: SequentialSettings, elsewhere: readonly ClassRuns[], keep: (s: CandidateSample) => boolean, keepParent: (r: ParentRun) => boolean): EffectEstimate | undefined {
  const own = pooled(tamedEstimate(runs, parentRuns, sigma, seq.wildSigmas), elsewhere, sigma, keep, keepParent, seq.wildSigmas)
  const prior = carried ? discounted(carried, seq.carryWeight) : undefined
  if (!own || !prior) return own ?? prior
  const contradicts = seq.carryCheckZ > 0 && own.delta - prior.delta > seq.carryCheckZ * Math.sqrt(own.variance + prior.variance)
  return contradicts ? own : combine(own, prior)
}

/**
 * Δ of the candidate's runs against the parent's on one class, wild runs tamed (`cutoff`·σ: parent
 * runs that far from their median left out, candidate runs counted at most that far from the
 * parent's mean); undefined without runs of both.
 */
function tamedEstimate(runs: readonly CandidateSample[], parentRuns: readonly number[], sigma: number, cutoff: number): EffectEstimate | undefined {
  const parent = withoutWild(parentRuns, sigma, cutoff)
  if (!runs.length || !parent.length) return undefined
  const parentMean = mean(parent)
  return estimateOf(mean(clipped(runs, parentMean, sigma, cutoff)), runs.length, parentMean, parent.length, sigma)
}

/** The candidates' runs, each counted at most `cutoff`·σ from the parent's mean (wildSigmas; 0: as they are). */
function clipped(runs: readonly CandidateSample[], parentMean: number, sigma: number, cutoff: number): number[] {
  return runs.map(s => (cutoff > 0 ? Math.min(parentMean + cutoff * sigma, Math.max(parentMean - cutoff * sigma, s.valBpb)) : s.valBpb))
}

/**
 * `pooled`: the candidate's class's estimate combined with each other class's (the runs `keep`
 * and `keepParent` let through), each in units of its own σ, scaled to the candidate's class's
 * σ. A class without such runs of C or of P adds nothing.
 */
function pooled(own: EffectEstimate | undefined, elsewhere: readonly ClassRuns[], sigma: number,
  keep: (s: CandidateSample) => boolean, keepParent: (r: ParentRun) => boolean, cutoff: number): EffectEstimate | undefined {
  let e = own
  for (const k of elsewhere) {
    const x = k.sigma > 0 ? tamedEstimate(k.samples.filter(keep), k.parentRuns.filter(keepParent).map(r => r.valBpb), k.sigma, cutoff) : undefined
    if (!x) continue
    const scale = sigma / k.sigma
    const theirs = { delta: x.delta * scale, variance: x.variance * scale * scale }
    e = e ? combine(e, theirs) : theirs
  }
  return e
}

/**
 * What a candidate's runs on its own parent hand on to its change carried onto a newer best: the
 * estimate from all its runs and from other contributors' alone (with `elsewhere`, its runs on the
 * other approved classes, each against its parent there, pooled as its verdict pooled them), each
 * combined with what it carried itself. The stale decision hands on the same (`carry`); the
 * coordinator recomputes it from the origin's rows (units/sequential-inputs.ts), so nothing new is
 * stored and runs that came back after the move count too. Without runs or parent runs on its own
 * class the origin passes on what it carried, unchanged.
 */
export function carriedFrom(runs: readonly CandidateSample[], parentRuns: readonly ParentRun[], sigma: number, authors: ReadonlySet<string>,
  carried: CarriedEvidence | undefined, seq: SequentialSettings = DEFAULT_SEQUENTIAL, elsewhere: readonly ClassRuns[] = []): CarriedEvidence | undefined {
  if (!runs.length || !parentRuns.length) return carried
  const parent = parentRuns.map(r => r.valBpb)
  const others = (s: CandidateSample) => !authors.has(s.contributorId)
  // Under `pooled` and `parallel` the origin's runs on the other approved classes go with it too,
  // each against the origin's parent there, as its own verdict pooled them.
  const independentRuns = [...runs.filter(others), ...elsewhere.flatMap(k => k.samples.filter(others))]
  const independent = withCarried(runs.filter(others), parent, sigma, carried?.independent, seq, elsewhere, others, () => true)
  const all = withCarried(runs, parent, sigma, carried?.all, seq, elsewhere, () => true, () => true)
  return carryOf(all, independent, independentRuns, [...parentRuns, ...elsewhere.flatMap(k => k.parentRuns)], carried)
}

function carryOf(all: EffectEstimate | undefined, independent: EffectEstimate | undefined, runs: readonly CandidateSample[], parentRuns: readonly ParentRun[],
  carried: CarriedEvidence | undefined): CarriedEvidence | undefined {
  if (!all) return undefined
  const ids = (earlier: readonly string[] | undefined, now: readonly { contributorId: string }[]) => [...new Set([...(earlier ?? []), ...now.map(r => r.contributorId)])].sort()
  return { all, independent: independent ?? null, contributorIds: ids(carried?.contributorIds, runs), parentContributorIds: ids(carried?.parentContributorIds, parentRuns) }
}

/** The fewest verification runs before a merge of a change that carries no evidence of its own. */
const MIN_VERIFICATIONS = 2

/** More runs while the test is undecided or the guards' minimum is not met; undefined when enough are in. */
function moreRuns(settings: RatchetSettings, m: Measured, aboveCap: boolean, verifications: number, undecided: boolean, carried: CarriedEvidence | undefined, perLook: number) {
  const selfOk = settings.allowSelfVerification === true
  const verified = new Set(m.independent.map(s => s.contributorId))
  // Those who verified the change on an older parent count too: the verdict without any one of
  // them still leaves their carried evidence out (guards).
  const witnesses = new Set([...verified, ...(carried?.contributorIds ?? [])].filter(id => !m.authors.has(id)))
  const contributorsShort = Math.max(0, verifierContributors(settings, aboveCap) - witnesses.size)
  // Two verification runs at least, even where the author may verify: one run with heavy-tailed
  // noise (a wild claim and one verification) merged 3 null changes in 9 merges of the grid's
  // 1 %-real campaigns. A carried change brings runs of its own; one run confirms it.
  const runsShort = Math.max(0, (carried ? 1 : Math.max(MIN_VERIFICATIONS, verifierContributors(settings, true))) - verifications)
  if (!undecided && contributorsShort === 0 && runsShort === 0) return undefined
  const exclude = aboveCap || !selfOk ? [...m.authors] : []
  return { needed: Math.max(1, contributorsShort, runsShort, undecided ? perLook : 0), exclude: contributorsShort > 0 ? [...exclude, ...verified] : exclude }
}

const clears = (e: EffectEstimate | undefined, z: number, minDelta: number): boolean => e !== undefined && e.delta <= -Math.max(minDelta, z * Math.sqrt(e.variance))
const show = (e: EffectEstimate): string => `Δ ${signed(e.delta)} ± ${fmt(Math.sqrt(e.variance))}`

/**
 * The issue-15 guards on a decisive test: the other contributors' runs alone clear the screen's
 * bar, and the verdict's bar without the runs of any one of them (of C, of P, and of the carried
 * evidence when it was theirs). Returns why not, `restsOn` (the contributor it rests on) when one more run by another contributor
 * may settle it, or undefined when the merge stands.
 */
function guards(input: RatchetInput, m: Measured, witnessed: Measured, independent: EffectEstimate | undefined, aboveCap: boolean, selfOk: boolean, seq: SequentialSettings): string | { restsOn: string } | undefined {
  const { settings, sigma } = input
  if (selfOk && !aboveCap) return undefined
  if (!clears(independent, settings.screenZ ?? settings.z, settings.minDelta))
    return `other contributors' runs do not show the win by themselves (${independent ? show(independent) : 'none'})`
  if (verifierContributors(settings, aboveCap) < 2) return undefined
  const carried = input.candidate.carried
  const parentRunsElsewhere = m.elsewhere.flatMap(c => c.parentRuns)
  for (const k of everyoneElse(witnessed.independent, [...m.parentRuns, ...parentRunsElsewhere], m.authors)) {
    const rest = m.independent.filter(s => s.contributorId !== k)
    const p1 = m.parentRuns.filter(r => r.contributorId !== k && !m.authors.has(r.contributorId))
    const p2 = p1.length ? p1 : m.parentRuns.filter(r => r.contributorId !== k)
    const parent = (p2.length ? p2 : m.parentRuns).map(r => r.valBpb)
    // The carried evidence without k's runs on either side: recomputed where the caller can, else
    // left out whole when k ran the carried change or its old parents.
    const theirs = !carried?.independent ? undefined
      : input.candidate.carriedWithout ? input.candidate.carriedWithout(k)?.independent ?? undefined
      : !carried.contributorIds.includes(k) && !carried.parentContributorIds.includes(k) ? carried.independent : undefined
    // On the other classes a parent left with none of its runs drops out of the pool, rather than fall back to k's.
    const e = withCarried(rest, parent, sigma, theirs, seq, m.elsewhere,
      s => s.contributorId !== k && !m.authors.has(s.contributorId), r => r.contributorId !== k && !m.authors.has(r.contributorId))
    if (clears(e, settings.z, settings.minDelta)) continue
    // Only a win the others' runs show by themselves at the verdict's bar earns another look.
    return clears(independent, settings.z, settings.minDelta) && witnessed.independent.length < seq.maxVerifications ? { restsOn: k }
      : `the win does not hold without the runs of any one other contributor (without one: ${e ? show(e) : 'nothing left'})`
  }
  return undefined
}

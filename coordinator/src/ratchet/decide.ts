import { contradicted, EXTRA_VERIFICATIONS, describe, evidenceOf, fmt, harmBound, signed, SIMPLIFICATION, verifierContributors, withoutAnyOne, type Measured } from './evidence.ts'
import { judgeSequential } from './decide-sequential.ts'
import { assertValidSettings, budgetProblem, isSequential, poolsClasses, SIMPLIFICATION_Z, type RatchetSettings } from './settings.ts'

/**
 * THE ratchet (DESIGN §7): what to do with candidate C, trained from parent P, given every val_bpb
 * sample of C and of P on one hardware class H. A pure function of the samples (it keeps no state
 * between calls): the caller reads measurements and σ from the database, calls it after every new
 * sample of C or P, and acts on the answer.
 *
 *   Δ = mean(C) − mean(P on H)
 *   threshold(z) = max(minDelta, z·σ·√(1/n_C + 1/n_P))
 *   clears(z) ⇔ Δ ≤ −threshold(z)
 *
 * Independence is by contributor, not by worker: one contributor (one token) may run many workers,
 * so the author's runs are those of every worker of C's contributor, and only runs by workers of
 * other contributors are evidence.
 *
 * 1. Screen: the author's runs (the claim) must clear screenZ (default: z), else C is discarded.
 * 2. Verify: a promising C is re-run by workers of other contributors until `replications`
 *    verifications are in. There is no early stop: the first verification alone says too little,
 *    and stopping on it loses real improvements for the sake of one run.
 * 3. Verdict: with the verifications in, all samples together must clear z, and the other
 *    contributors' runs by themselves must clear screenZ (they would have earned verification on their
 *    own); then C merges.
 * A change that deletes code (linesDelta < 0) is a simplification: its claim is screened at Δ ≤
 * +minDelta and verified the same way, and it merges when the other contributors' runs show it no
 * worse than that with a margin: Δ + simplificationZ·σ·√(1/n_C + 1/n_P) ≤ +minDelta (harmBound). On
 * the point estimate alone, a forged claim carried a deletion truly 0.5σ worse into the best 18 % of
 * the time (bench/adversaries/simplification-drift.ts).
 *
 * Two guards keep one contributor's numbers from carrying a merge on their own:
 * - the independent runs (other contributors') must show the win by themselves: clear
 *   the screen's threshold (a simplification's: be no worse than +minDelta). This also blunts the
 *   winner's curse: C reached verification *because* its first run was good;
 * - an improvement claimed above `maxImprovement` sets the author's runs aside entirely: the
 *   independent runs alone must satisfy the rule, and if they do not, C is rejected as an
 *   unreproduced claim (a forged or buggy number), not merely discarded.
 * Sanity comes first: a non-finite or non-positive val_bpb or a run outside the time budget, from
 * any worker, rejects C.
 *
 * Issue 15 adds guards against adversaries of one or two contributors (docs/RATCHET.md,
 * "Adversaries"):
 * - verification needs runs by at least `minVerifierContributors` distinct other contributors, and
 *   with two or more the verdict must hold *without any one of them* (runs of C and of P alike):
 *   a friend's forged verification, or a friend's inflated baselines, cannot carry a merge alone;
 * - a candidate carried onto a newer best (three-way merge or rebase) keeps its origin's claim:
 *   the cap still judges it, and its origin's author is no independent witness either;
 * - verification runs that crashed or that the worker's trusted evaluator refused count against
 *   C: from two other contributors (or three in all) C is rejected as failing elsewhere;
 * - a candidate of a hardware class the maintainer has not approved is held, unjudged.
 */

export type { CandidateSample, ClassRuns, ParentRun, RatchetInput, Evidence, CarriedEvidence, RejectReason, DiscardReason, VerifyReason, Decision } from './verdict-types.ts'
import type { CandidateSample, ParentRun, RatchetInput, Evidence, Decision } from './verdict-types.ts'



function sanityFailure(s: CandidateSample, settings: RatchetSettings): Decision | undefined {
  if (!Number.isFinite(s.valBpb))
    return { kind: 'reject', reason: 'non-finite-metric', workerId: s.workerId, message: `rejected: val_bpb ${s.valBpb} from ${s.workerId} is not a finite number` }
  if (s.valBpb <= 0)
    return { kind: 'reject', reason: 'non-positive-metric', workerId: s.workerId, message: `rejected: val_bpb ${s.valBpb} from ${s.workerId} is not positive` }
  const budget = budgetProblem(s.trainingSeconds, settings)
  if (budget) return { kind: 'reject', reason: 'out-of-budget', workerId: s.workerId, message: `rejected: ${s.workerId} ${budget}` }
  return undefined
}

/**
 * Verification runs that failed elsewhere reject C once this many other contributors saw it fail:
 * one contributor's crashes cannot kill a candidate. A contributor whose verification failed runs
 * no more of them (`decide` adds it to the excluded), so a candidate that crashes for one
 * contributor does not keep earning its runs. There was also a limit of three failures in all,
 * whoever's: one saboteur, the only other contributor eligible, crashed three verifications at
 * once (no training needed) and rejected every candidate it was drawn for
 * (test/hostile/verify-crash.test.ts).
 */
export const FAILED_CONTRIBUTORS_TO_REJECT = 2

export { EXTRA_VERIFICATIONS } from './evidence.ts'

function failedElsewhere(failed: readonly { contributorId: string }[], witnesses: (id: string) => boolean): Decision | undefined {
  const others = new Set(failed.map(f => f.contributorId).filter(witnesses))
  if (others.size < FAILED_CONTRIBUTORS_TO_REJECT) return undefined
  return {
    kind: 'reject',
    reason: 'fails-elsewhere',
    message: `rejected: ${failed.length} verification run(s) by ${others.size} other contributor(s) crashed or were refused by the trusted evaluator`,
  }
}

export function decide(input: RatchetInput): Decision {
  const d = decideOnce(input)
  // A contributor whose verification failed has said what it sees: further runs go to others.
  const failed = [...new Set((input.candidate.failedRuns ?? []).map(f => f.contributorId))].filter(id => id !== input.candidate.authorId)
  if (d.kind !== 'verify' || !failed.length) return d
  return { ...d, excludeContributorIds: [...new Set([...d.excludeContributorIds, ...failed])] }
}

function decideOnce(input: RatchetInput): Decision {
  const { candidate, sigma, parentIsBest, settings } = input
  assertValidSettings(settings)
  if (!(Number.isFinite(sigma) && sigma >= 0)) throw new RangeError(`sigma must be a number ≥ 0, got ${sigma}`)
  const parentRuns: readonly ParentRun[] = input.parentRuns ?? input.parentSamples.map(valBpb => ({ valBpb, contributorId: '' }))
  const parentSamples = parentRuns.map(r => r.valBpb)
  for (const p of parentSamples)
    if (!(Number.isFinite(p) && p > 0)) throw new RangeError(`parent samples must be positive numbers (they passed sanity when measured), got ${p}`)

  // 1. Sanity: a number that cannot be a real result of this code ends the candidate, whoever ran it.
  // Under `pooled` a run on another class is evidence too, so it passes the same sanity.
  const elsewhere = poolsClasses(settings.policy) ? input.elsewhere ?? [] : []
  for (const s of [...candidate.samples, ...elsewhere.flatMap(k => k.samples)]) {
    const failure = sanityFailure(s, settings)
    if (failure) return failure
  }
  if (input.classApproved === false)
    return { kind: 'hold', message: 'held: this hardware class is not approved by the maintainer yet; its numbers count toward merges once it is' }

  const carried = candidate.carriedClaim
  // Whose word is a claim: the author's, and for a carried candidate its origin's author too.
  const authors = new Set([candidate.authorId, ...(carried ? [carried.authorId] : [])])
  const author = candidate.samples.filter(s => s.contributorId === candidate.authorId)
  const independent = candidate.samples.filter(s => !authors.has(s.contributorId))
  const failed = failedElsewhere(candidate.failedRuns ?? [], id => !authors.has(id))
  if (failed) return failed
  const selfOk = settings.allowSelfVerification === true
  const excludeAuthors = [...authors]

  // 2. Enough data to compare at all.
  const carriedAboveCap = carried !== undefined && carried.improvement > settings.maxImprovement
  if (candidate.samples.length === 0) {
    // A commit nobody has trained yet: one the coordinator made by merging C's change onto a newer best.
    if (!parentIsBest) return { kind: 'stale', simplification: false, message: 'stale: the best moved on before this commit was measured', carry: candidate.carried }
    // The sequential policy starts with the fewest runs its guards need; it asks for more as it goes.
    const first = !isSequential(settings.policy) ? settings.replications : selfOk || candidate.carried ? 1 : verifierContributors(settings, true)
    const needed = Math.max(1, first, carriedAboveCap ? verifierContributors(settings, true) : 0)
    return {
      kind: 'verify', reason: carriedAboveCap ? 'above-cap' : 'unmeasured', needed, excludeContributorIds: selfOk && !carriedAboveCap ? [] : excludeAuthors,
      message: carriedAboveCap
        ? `verify: carried over from a claim of ${fmt(carried.improvement)}, above the cap ${fmt(settings.maxImprovement)}; ${needed} run(s) by other contributors must reproduce it`
        : `verify: not measured yet, ${needed} run(s) needed`,
    }
  }
  // A parent that is no longer the best gets no more baselines: under the sequential policy its
  // candidate goes onto the best with what evidence it carries, rather than wait for ever.
  if (parentSamples.length === 0) return !parentIsBest && isSequential(settings.policy)
    ? { kind: 'stale', simplification: false, message: 'stale: the best moved on before its parent was measured on this class', carry: candidate.carried }
    : { kind: 'await-baseline', message: 'waiting for a baseline of the parent on this hardware class' }
  return judgeMeasured(input, { parentRuns, parentSamples, author, independent, authors, carriedAboveCap, elsewhere })
}

/** Steps 3–6 of the rule, for a candidate with runs and a parent with baselines. */
function judgeMeasured(input: RatchetInput, m: Measured): Decision {
  if (isSequential(input.settings.policy) && input.candidate.linesDelta >= 0) return judgeSequential(input, m)
  const { candidate, sigma, parentIsBest, settings } = input
  const { parentSamples, author, independent } = m

  // 3. The claim: the author's runs earn verification runs only if they look like a win.
  const screen = { ...settings, z: settings.screenZ ?? settings.z }
  const claim = author.length > 0 ? evidenceOf(author, parentSamples, sigma, screen, 'author') : undefined
  const wins = (e: Evidence) => ({
    improvement: e.delta <= -e.threshold,
    simplification: candidate.linesDelta < 0 && e.delta <= settings.minDelta,
  })
  const claimed = claim ? wins(claim) : undefined
  if (claim && claimed && !claimed.improvement && !claimed.simplification)
    return { kind: 'discard', reason: 'not-promising', evidence: claim, message: `discarded: not promising; ${describe(claim)}` }
  const claimSimplification = claimed !== undefined && !claimed.improvement
  const what = claimed === undefined ? 'change' : claimSimplification ? SIMPLIFICATION : 'improvement'
  const claimText = claim ? `; ${describe(claim)}` : ''
  // Too good to be true: the author's word does not count until someone else sees it too. A
  // candidate carried onto a newer best keeps the verdict of its origin's claim.
  const aboveCap = (claim !== undefined && -claim.delta > settings.maxImprovement) || m.carriedAboveCap

  // 4. Promising, but built on an old best: the caller merges the change onto the current best.
  if (!parentIsBest)
    return { kind: 'stale', simplification: claimSimplification, evidence: claim, message: `stale: promising ${what}, but the best moved on since its parent${claimText}` }

  // 5. Verification runs by other contributors (or, where allowed, by the author's own workers).
  const verify = verificationsNeeded(input, m, aboveCap, claim)
  if (verify) return { ...verify, reason: aboveCap ? 'above-cap' : claimed === undefined ? 'unmeasured' : claimSimplification ? 'simplification' : 'promising',
    message: aboveCap && claim
      ? `verify: claimed improvement ${fmt(-claim.delta)} exceeds the cap ${fmt(settings.maxImprovement)}; ${verify.needed} more run(s) by other contributors must reproduce it`
      : aboveCap ? `verify: carried over from a claim above the cap ${fmt(settings.maxImprovement)}; ${verify.needed} more run(s) by other contributors must reproduce it`
      : `verify: promising ${what}, ${verify.needed} more verification run(s) needed${claimText}` }

  // 6. The verdict, on all samples (on the independent ones alone when the claim exceeded the cap).
  const evidence = aboveCap
    ? evidenceOf(independent, parentSamples, sigma, settings, 'independent')
    : evidenceOf(candidate.samples, parentSamples, sigma, settings, 'all')
  // The other contributors' runs alone, against the screen's bar (when the claim exceeded the cap they
  // are the evidence already).
  const alone = independent.length > 0 && !aboveCap ? evidenceOf(independent, parentSamples, sigma, screen, 'independent') : undefined
  const final = wins(evidence)
  const improvement = final.improvement && (alone === undefined || alone.delta <= -alone.threshold)
  // A simplification is judged on the other contributors' runs (on all of them where the author may
  // verify and nobody else has), and its bound, not its point estimate, must be within minDelta.
  const notWorse = (e: Evidence) => harmBound(e, settings) <= settings.minDelta
  const simplification = !improvement && !aboveCap && final.simplification && notWorse(alone ?? evidence)
  // With two or more verifying contributors required, no one of them may be what carries it.
  const pairProof = verifierContributors(settings, aboveCap) >= 2
    ? withoutAnyOne(independent, m.parentRuns, m.authors, sigma, settings, e => (improvement ? wins(e).improvement : notWorse(e)))
    : undefined
  if (!improvement && !simplification) return contradicted(notAWin(evidence, alone, final, aboveCap, claim, settings), author, independent, sigma, settings)
  // Not yet shown without any one contributor: more runs by others, a few at most, rather than a
  // verdict now. Real improvements get there; an accomplice's runs never count toward it.
  // Only a win the other contributors' runs show by themselves at the verdict's bar earns them: a
  // forged claim carries the pooled verdict, and every further look would be another chance for
  // honest noise to pass the check.
  const othersAlone = independent.length ? evidenceOf(independent, parentSamples, sigma, settings, 'independent') : undefined
  const othersShow = othersAlone !== undefined && (improvement ? wins(othersAlone).improvement : notWorse(othersAlone))
  const extra = Math.max(1, settings.replications) + EXTRA_VERIFICATIONS - independent.length
  if (pairProof && othersShow && extra > 0)
    return { kind: 'verify', reason: aboveCap ? 'above-cap' : simplification ? 'simplification' : 'promising', needed: 1, excludeContributorIds: [...m.authors], evidence: claim,
      message: `verify: the win does not yet hold without the runs of any one other contributor; 1 more run (at most ${extra}) by another contributor; ${describe(evidence)}` }
  if (pairProof) {
    const message = `the win does not hold without the runs of any one other contributor (without one: ${describe(pairProof)})`
    return aboveCap
      ? { kind: 'reject', reason: 'unreproduced-improvement', evidence, message: `rejected: claimed improvement was not reproduced by other contributors: ${message}` }
      : contradicted({ kind: 'discard', reason: 'not-reproduced', evidence, message: `discarded: ${message}; ${describe(evidence)}` }, author, independent, sigma, settings)
  }
  const verifierIds = [...new Set(independent.map(s => s.workerId))].sort()
  return {
    kind: 'merge',
    simplification,
    evidence,
    samples: [...candidate.samples],
    verifierIds,
    message: `merged: ${simplification ? SIMPLIFICATION : 'improvement'}, verified by ${verifierIds.length > 0 ? verifierIds.join(', ') : 'no other contributor'}; ${describe(evidence)}`,
  }
}

/** Step 5: how many more verification runs, by whom; undefined when enough are in. */
function verificationsNeeded(input: RatchetInput, m: Measured, aboveCap: boolean, claim: Evidence | undefined) {
  const { candidate, settings } = input
  const selfOk = settings.allowSelfVerification === true
  const required = aboveCap ? Math.max(1, settings.replications) : settings.replications
  const done = aboveCap || !selfOk ? m.independent.length : candidate.samples.length - (m.author.length > 0 ? 1 : 0)
  const verified = new Set(m.independent.map(s => s.contributorId))
  const contributorsShort = Math.max(0, verifierContributors(settings, aboveCap) - verified.size)
  const needed = Math.max(required - done, contributorsShort)
  if (needed <= 0) return undefined
  const exclude = aboveCap || !selfOk ? [...m.authors] : []
  // While too few distinct contributors have verified, those who did wait for the others.
  return { kind: 'verify' as const, needed, excludeContributorIds: contributorsShort > 0 ? [...exclude, ...verified] : exclude, evidence: claim }
}

function notAWin(evidence: Evidence, alone: Evidence | undefined, final: { improvement: boolean; simplification: boolean }, aboveCap: boolean,
  claim: Evidence | undefined, settings: RatchetSettings): Decision {
  if (aboveCap)
    return {
      kind: 'reject',
      reason: 'unreproduced-improvement',
      evidence,
      message: claim
        ? `rejected: claimed improvement ${fmt(-claim.delta)} was not reproduced by other contributors: ${describe(evidence)}`
        : `rejected: a claimed improvement above the cap (carried over from its origin) was not reproduced by other contributors: ${describe(evidence)}`,
    }
  if (final.simplification && !final.improvement) {
    const shown = alone ?? evidence
    const whose = alone ? "other contributors' runs" : 'runs'
    return {
      kind: 'discard',
      reason: 'not-reproduced',
      evidence,
      message: `discarded: a simplification must be shown no worse than the parent: on the ${whose}, Δ ${signed(shown.delta)} plus ` +
        `${settings.simplificationZ ?? SIMPLIFICATION_Z} standard error(s) is ${signed(harmBound(shown, settings))}, needed ≤ ${signed(settings.minDelta)}; ${describe(evidence)}`,
    }
  }
  if (final.improvement) {
    const bar = -alone!.threshold
    return {
      kind: 'discard',
      reason: 'not-reproduced',
      evidence,
      message: `discarded: other contributors' runs do not show the win by themselves (their Δ ${signed(alone!.delta)}, needed ≤ ${signed(bar)}); ${describe(evidence)}`,
    }
  }
  return { kind: 'discard', reason: 'not-confirmed', evidence, message: `discarded: not confirmed by verification; ${describe(evidence)}` }
}

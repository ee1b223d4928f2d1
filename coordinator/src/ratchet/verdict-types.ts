import type { EffectEstimate } from './sequential.ts'
import type { RatchetSettings } from './settings.ts'

/** What the ratchet decides on and what it answers (decide.ts), apart so that its helpers can name them without importing it. */

export interface CandidateSample {
  valBpb: number
  workerId: string
  /** The contributor whose worker ran it: the unit of independence. */
  contributorId: string
  /** training_seconds from the run's summary. */
  trainingSeconds: number
}

/** A parent run, with whose it was (for the verdict that must hold without any one contributor). */
export interface ParentRun {
  valBpb: number
  contributorId: string
}

/** C's runs on one other hardware class, with its parent's runs and the noise floor there. */
export interface ClassRuns {
  hardwareClass: string
  samples: readonly CandidateSample[]
  parentRuns: readonly ParentRun[]
  sigma: number
}

export interface RatchetInput {
  candidate: {
    /**
     * The contributor whose worker's exploration produced C. Runs by any worker of this contributor
     * are a claim; other contributors' runs are evidence.
     */
    authorId: string
    /** Every run of C on class H: the author's, then verifications (order does not matter). */
    samples: readonly CandidateSample[]
    /** Lines added minus lines deleted in the editable files; negative when the change deletes code. */
    linesDelta: number
    /**
     * For a candidate carried onto a newer best: the claim of the experiment it came from (its
     * author and the improvement −Δ it claimed over its own parent). Absent: C is an original.
     */
    carriedClaim?: { authorId: string; improvement: number }
    /** Verification runs of C that crashed or were refused by the worker's evaluator. */
    failedRuns?: readonly { workerId: string; contributorId: string }[]
    /**
     * Sequential policy: what the runs of the experiment C was carried from showed about the same
     * change on its own parent (the `carry` of the stale decision that sent it here). Absent: none.
     */
    carried?: CarriedEvidence
    /**
     * The carried evidence recomputed without one contributor's runs, on the carried change and on
     * its old parents alike, for the verdict without that one (decide-sequential.ts guards): the
     * coordinator and the grid recompute it from the origin's runs. Without it the carried evidence
     * is left out whole wherever that one ran either side.
     */
    carriedWithout?: (contributorId: string) => CarriedEvidence | undefined
  }
  /**
   * Sequential policy: the campaign's observed share of ideas that are real gains (sequential.ts,
   * realRateOf). Absent: the prior's.
   */
  realRate?: number
  /** val_bpb of P on class H: baselines and verifications, never claims (explore/rebase runs). */
  parentSamples: readonly number[]
  /** The same runs with their contributors; when given, used instead of parentSamples. */
  parentRuns?: readonly ParentRun[]
  /** False while the maintainer has not approved class H (absent: approved). C is then held. */
  classApproved?: boolean
  /** Noise floor of the campaign on class H (see noise.ts). */
  sigma: number
  /**
   * `pooled` policy: C's runs on the other *approved* classes, each with P's runs and σ on that
   * class (the caller leaves unapproved classes and suspects' runs out). Absent or ignored under
   * the other policies.
   */
  elsewhere?: readonly ClassRuns[]
  /** False once the best has moved on from P: C's change must then be merged onto the new best. */
  parentIsBest: boolean
  settings: RatchetSettings
}

/** The numbers behind a decision, recorded with the merge so it can be checked and reverted. */
export interface Evidence {
  /** mean(C) − mean(P); negative is better. */
  delta: number
  threshold: number
  sigma: number
  nC: number
  nP: number
  candidateMean: number
  parentMean: number
  /**
   * `author`: the claim (the author's runs only); `all`: every run; `independent`: the runs of
   * other contributors alone, used when the claim exceeded the cap.
   */
  samplesUsed: 'author' | 'all' | 'independent'
}

/**
 * The evidence about a change that survives a moved best: its effect estimated from all runs and
 * from the other contributors' runs alone (null: none yet), and who those contributors were (the
 * verdict without any one of them leaves this evidence out when it was theirs).
 */
export interface CarriedEvidence {
  all: EffectEstimate
  independent: EffectEstimate | null
  /** Who ran the carried change (its verifiers along the chain, the authors too). */
  contributorIds: readonly string[]
  /**
   * Whose runs are on the parent side of the carried estimates (the old parents' baselines and
   * verifications, along the chain): the verdict without one contributor leaves the carried
   * evidence out when that one is here too, or a sybil's second token that only inflated an old
   * parent's baselines would still carry the verdict without itself (decide-sequential.ts guards).
   */
  parentContributorIds: readonly string[]
}

export type RejectReason = 'non-finite-metric' | 'non-positive-metric' | 'out-of-budget' | 'unreproduced-improvement' | 'fails-elsewhere'
/**
 * not-promising: the author's runs do not clear the threshold; not-confirmed: with the
 * verifications in, all runs together do not; not-reproduced: they do, but the other contributors'
 * runs by themselves do not show the win.
 */
export type DiscardReason = 'not-promising' | 'not-confirmed' | 'not-reproduced'
export type VerifyReason = 'promising' | 'simplification' | 'above-cap' | 'unmeasured'

export type Decision =
  | { kind: 'reject'; reason: RejectReason; message: string; workerId?: string; evidence?: Evidence }
  | { kind: 'await-baseline'; message: string }
  /** Not judged at all for now: the class is not approved by the maintainer. */
  | { kind: 'hold'; message: string }
  | {
      kind: 'discard'
      reason: DiscardReason
      message: string
      evidence: Evidence
      /** The other contributors' runs contradict the author's claim (see `contradicted`). */
      claimContradicted?: true
    }
  | {
      kind: 'verify'
      reason: VerifyReason
      /** More verification runs needed before the next decision can merge. */
      needed: number
      /**
       * Contributors whose workers must not run them: the author's (unless self-verification is
       * allowed), and those that already verified C while too few distinct contributors have.
       */
      excludeContributorIds: string[]
      /**
       * Sequential policy with `parentOnDemand`: runs of the candidate's parent on its class wanted
       * alongside, because the parent's few runs dominate the test's uncertainty. Absent: none.
       */
      parentRuns?: number
      message: string
      evidence?: Evidence
    }
  | {
      kind: 'stale'
      simplification: boolean
      message: string
      evidence?: Evidence
      /** Sequential policy: the evidence the carried commit starts from. */
      carry?: CarriedEvidence
    }
  | {
      kind: 'merge'
      simplification: boolean
      message: string
      evidence: Evidence
      samples: CandidateSample[]
      /** Distinct workers of other contributors whose runs are among the samples. */
      verifierIds: string[]
    }

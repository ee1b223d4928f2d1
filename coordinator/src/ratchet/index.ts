/** The noise-aware ratchet: pure decisions over measurements, and the tools to check them. */
export { decide, EXTRA_VERIFICATIONS, type CarriedEvidence, type ClassRuns, FAILED_CONTRIBUTORS_TO_REJECT, type CandidateSample, type Decision, type DiscardReason, type Evidence, type ParentRun, type RatchetInput, type RejectReason, type VerifyReason } from './decide.ts'
export { assertValidSettings, BUDGET_SLACK_SECONDS, budgetProblem, DEFAULT_RATCHET_SETTINGS, isSequential, poolsClasses, type RatchetPolicy, type RatchetSettings } from './settings.ts'
export { BIAS_MIN_COMMITS, BIAS_SHIFT, BIAS_Z, biasedReporters, CLAIM_GAP_MIN_CANDIDATES, CLAIM_GAP_SIGMA, MIN_WITNESSES, overclaimers, WITNESS_SHIFT, WITNESS_Z, type ClaimGap, type CommitRun, type ReportingBias, type UnselectedRun } from './bias.ts'
export { FORGER_UNREPRODUCED_RATE, HONEST_UNREPRODUCED_RATE, MIN_UNREPRODUCED, UNREPRODUCED_ALPHA, unreproducedClaimants, type DecidedClaim } from './unreproduced.ts'
export { HISTORY_FLOOR_FRACTION, MIN_DEGREES_OF_FREEDOM, noiseFloor, noiseFloorOfGroups, type Measurement, type NoiseFloor } from './noise.ts'
export { MEDIAN_ABS_NORMAL, mean, median, normalCdf, normalQuantile, pooledSd, robustPooledSd, sampleSd, type PooledSd } from './stats.ts'
export { boundaries, combine, DEFAULT_SEQUENTIAL, discounted, PARALLEL_SEQUENTIAL, withoutWild, estimateOf, logLikelihoodRatio, parentRunsWanted, realRateOf, type Boundaries, type EffectEstimate, type SequentialSettings } from './sequential.ts'
export { carriedFrom, sequentialSettingsOf } from './decide-sequential.ts'

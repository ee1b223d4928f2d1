/** Hypotheses: near-duplicate detection (pure). */
export { DEFAULT_DUPLICATE_THRESHOLD, dedupKey, findDuplicate, normalizeWords, similarity, type ExistingHypothesis } from './dedup.ts'

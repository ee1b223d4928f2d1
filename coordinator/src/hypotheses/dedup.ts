/**
 * Near-duplicate hypotheses: agents on many workers propose overlapping ideas ("Increase the
 * learning rate", "Try increasing the LR"), and training each phrasing separately wastes GPU time.
 * Texts are normalized to word stems, then compared as sets of words and adjacent word pairs
 * (Jaccard), so shared vocabulary counts and word order counts a little ("decrease the learning
 * rate" is not "increase the learning rate"). Numbers are kept whole, and two texts that both name
 * numbers are only as similar as their sets of numbers: "LR 0.04" and "LR 0.08" are different
 * experiments however alike the words around them.
 *
 * The bias is deliberate: a missed duplicate costs one training run, a false match throws an idea
 * away. A paraphrase that reorders the sentence ("cosine schedule for the learning rate" against
 * "cosine learning rate schedule") shares all words but few pairs and may be missed.
 */

/** Words that carry no idea of their own. Kept small: "not", "no", "more", "less" change meaning. */
const STOP_WORDS = new Set([
  'a', 'an', 'the', 'of', 'to', 'in', 'on', 'for', 'and', 'or', 'with', 'by', 'at', 'from', 'as', 'into',
  'is', 'are', 'be', 'been', 'it', 'its', 'this', 'that', 'these', 'those', 'we', 'our', 'let', 'lets',
  'try', 'trying', 'use', 'using', 'maybe', 'perhaps', 'should', 'could', 'would', 'will', 'can', 'then', 'so', 'also',
])

/** Abbreviations agents and people use interchangeably with the words. */
const EXPANSIONS = new Map<string, string[]>([
  ['lr', ['learning', 'rate']],
  ['wd', ['weight', 'decay']],
  ['bs', ['batch', 'size']],
  ['seq', ['sequence']],
  ['len', ['length']],
  ['attn', ['attention']],
])

/** Crude suffix stripping, the same on both sides of a comparison: increase/increasing/increased/increases → increas. */
function stem(word: string): string {
  if (/^\d/.test(word)) return word
  let w = word
  for (const suffix of ['ing', 'ed', 'es', 's']) {
    if (w.endsWith(suffix) && w.length - suffix.length >= 3 && !w.endsWith('ss')) {
      w = w.slice(0, -suffix.length)
      break
    }
  }
  return w.length > 3 && w.endsWith('e') ? w.slice(0, -1) : w
}

/** Lowercase word stems without punctuation, accents or stop words; numbers (with decimals) kept whole. */
export function normalizeWords(text: string): string[] {
  const words = text
    .normalize('NFKD')
    .replace(/\p{M}/gu, '') // accents split off by NFKD
    .toLowerCase()
    .replace(/(\p{L})-(?=\p{L})/gu, '$1') // warm-up → warmup
    .match(/\d+(?:\.\d+)*|\p{L}+/gu) ?? []
  return words.flatMap(w => EXPANSIONS.get(w) ?? [w]).filter(w => !STOP_WORDS.has(w)).map(stem)
}

/** The normalized text as one string: equal keys mean the same words in the same order. */
export function dedupKey(text: string): string {
  return normalizeWords(text).join(' ')
}

function shingles(words: readonly string[]): Set<string> {
  const set = new Set<string>(words)
  for (let i = 0; i + 1 < words.length; i++) set.add(`${words[i]} ${words[i + 1]}`)
  return set
}

function jaccard(a: ReadonlySet<string>, b: ReadonlySet<string>): number {
  if (a.size === 0 && b.size === 0) return 1
  let shared = 0
  for (const x of a) if (b.has(x)) shared++
  return shared / (a.size + b.size - shared)
}

const isNumber = (w: string) => /^\d/.test(w)

/** What similarity compares of a text: its words and word pairs, and its numbers. */
export interface Idea {
  shingles: ReadonlySet<string>
  numbers: ReadonlySet<string>
}

export function ideaOf(text: string): Idea {
  const words = normalizeWords(text)
  return { shingles: shingles(words), numbers: new Set(words.filter(isNumber)) }
}

function similarityOf(a: Idea, b: Idea): number {
  const numbers = a.numbers.size > 0 && b.numbers.size > 0 ? jaccard(a.numbers, b.numbers) : 1
  return jaccard(a.shingles, b.shingles) * numbers
}

/**
 * Similarity in [0, 1]: Jaccard of the two texts' words and adjacent word pairs, times the Jaccard
 * of their numbers when both name some. 1 for the same normalized text.
 */
export function similarity(a: string, b: string): number {
  return similarityOf(ideaOf(a), ideaOf(b))
}

/** At or above this, two hypotheses are treated as one idea (see the examples in the tests). */
export const DEFAULT_DUPLICATE_THRESHOLD = 0.6

export interface ExistingHypothesis {
  id: string
  text: string
  /** Its `ideaOf(text)`, when the caller keeps them (hypotheses/add.ts). */
  idea?: Idea
}

/** The most similar existing hypothesis at or above the threshold, or undefined if the idea is new. */
export function findDuplicate(
  text: string,
  existing: readonly ExistingHypothesis[],
  threshold: number = DEFAULT_DUPLICATE_THRESHOLD,
): { id: string; similarity: number } | undefined {
  let best: { id: string; similarity: number } | undefined
  const idea = ideaOf(text)
  for (const h of existing) {
    const s = similarityOf(idea, h.idea ?? ideaOf(h.text))
    if (s >= threshold && (best === undefined || s > best.similarity)) best = { id: h.id, similarity: s }
  }
  return best
}

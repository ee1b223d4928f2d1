import t from 'tap'
import { DEFAULT_DUPLICATE_THRESHOLD, dedupKey, findDuplicate, normalizeWords, similarity } from '../../src/hypotheses/dedup.ts'

const dup = (a: string, b: string) => similarity(a, b) >= DEFAULT_DUPLICATE_THRESHOLD

t.test('normalization', async t => {
  t.test('lowercases, drops punctuation and stop words', async t => {
    t.same(normalizeWords('Increase THE depth, of the model!'), normalizeWords('increase depth model'))
  })

  t.test('keeps numbers whole, decimals included', async t => {
    t.same(normalizeWords('LR=0.04, depth 12').filter(w => /\d/.test(w)), ['0.04', '12'])
  })

  t.test('maps inflections of a word to one stem', async t => {
    const stems = ['increase', 'increasing', 'increased', 'increases'].map(w => normalizeWords(w)[0])
    t.equal(new Set(stems).size, 1, stems.join(' '))
  })

  t.test('expands common abbreviations', async t => {
    t.same(normalizeWords('lr'), normalizeWords('learning rate'))
    t.same(normalizeWords('wd'), normalizeWords('weight decay'))
  })

  t.test('joins hyphenated words and strips accents', async t => {
    t.same(normalizeWords('warm-up'), normalizeWords('warmup'))
    t.same(normalizeWords('Adam café'), normalizeWords('adam cafe'))
  })

  t.test('words that look like object properties are plain words', async t => {
    const words = normalizeWords('constructor toString hasOwnProperty')
    t.equal(words.length, 3)
    t.ok(words.every(w => typeof w === 'string'), words.join(' '))
  })
})

t.test('dedupKey is equal for texts that differ only in case, punctuation and filler', async t => {
  t.equal(dedupKey('Try increasing the LR.'), dedupKey('increase learning rate'))
  t.not(dedupKey('increase learning rate'), dedupKey('decrease learning rate'))
})

t.test('near-duplicates are recognized', async t => {
  const pairs: [string, string][] = [
    ['Increase the learning rate', 'Try increasing the LR'],
    ['Use a cosine learning rate schedule with warmup', 'Try a cosine LR schedule with warm-up'],
    ['Add weight decay 0.1 to the embeddings', 'Use wd=0.1 on embeddings'],
    ['Remove value embeddings', 'Remove the value embeddings to simplify'],
    ['Set the matrix LR to 0.04.', 'set matrix lr to 0.04'],
  ]
  for (const [a, b] of pairs) t.ok(dup(a, b), `"${a}" ~ "${b}" (${similarity(a, b).toFixed(2)})`)
})

t.test('different ideas are kept apart', async t => {
  const pairs: [string, string][] = [
    ['Increase the learning rate', 'Decrease the learning rate'],
    ['Set the matrix LR to 0.04', 'Set the matrix LR to 0.08'],
    ['Increase depth to 12', 'Increase depth to 16'],
    ['Tie input and output embeddings', 'Untie input and output embeddings'],
    ['Double the model depth to 16 layers', 'Increase batch size to 2^20 tokens'],
    ['Replace ReLU squared with SwiGLU', 'Use rotary embeddings with base 50000'],
  ]
  for (const [a, b] of pairs) t.notOk(dup(a, b), `"${a}" ≁ "${b}" (${similarity(a, b).toFixed(2)})`)
})

t.test('similarity is symmetric and 1 for the same text', async t => {
  const a = 'Increase the warmup ratio to 0.1'
  const b = 'warmup ratio 0.1 with longer cooldown'
  t.equal(similarity(a, b), similarity(b, a))
  t.equal(similarity(a, a), 1)
})

t.test('findDuplicate', async t => {
  const existing = [
    { id: 'h1', text: 'Decrease the learning rate' },
    { id: 'h2', text: 'Increase the learning rate' },
    { id: 'h3', text: 'Increase the learning rate and the batch size' },
  ]

  t.test('returns the most similar existing hypothesis above the threshold', async t => {
    t.match(findDuplicate('Try increasing the LR', existing), { id: 'h2', similarity: 1 })
  })

  t.test('returns undefined for a new idea', async t => {
    t.equal(findDuplicate('Use a squared ReLU in the MLP', existing), undefined)
  })

  t.test('honours a stricter threshold', async t => {
    t.ok(findDuplicate('Increase the learning rate and batch size a little', existing, 0.5))
    t.equal(findDuplicate('Increase the learning rate and batch size a little', existing, 0.99), undefined)
  })

  t.test('returns undefined when there is nothing to compare with', async t => {
    t.equal(findDuplicate('anything', []), undefined)
  })
})

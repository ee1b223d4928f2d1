import t from 'tap'
import { costOf, priceOf } from '../../src/agent/pricing.ts'

t.test('cost at list prices, cache reads and writes included; unknown models cost null', async t => {
  const tokens = { inputTokens: 1_000_000, outputTokens: 100_000, cacheReadTokens: 1_000_000, cacheWriteTokens: 1_000_000 }
  t.equal(costOf(tokens, priceOf('claude-sonnet-5-5')), 3 + 1.5 + 0.3 + 3.75)
  t.equal(costOf(tokens, priceOf('claude-opus-4-1-20250805')), 15 + 7.5 + 1.5 + 18.75)
  t.equal(costOf(tokens, priceOf('claude-opus-4-5')), 5 + 2.5 + 0.5 + 6.25)
  t.equal(costOf(tokens, priceOf('some-other-model')), null)
  t.equal(costOf(tokens, priceOf('some-other-model', '2,10')), 2 + 1 + 0.2 + 2.5, 'ANTHROPIC_PRICE prices any model')
})

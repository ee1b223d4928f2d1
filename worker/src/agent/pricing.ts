/** List prices in US dollars per million tokens. */
export interface Price {
  input: number
  output: number
  /** Writing the prompt cache (5-minute entries) and reading from it. */
  cacheWrite: number
  cacheRead: number
}

const price = (input: number, output: number): Price => ({ input, output, cacheWrite: input * 1.25, cacheRead: input * 0.1 })

/**
 * Models by id prefix, most specific first: list prices as published for each family when this
 * was written (later generations of a family are assumed to keep its price). A model missing here
 * reports its tokens with a null cost rather than a guess; ANTHROPIC_PRICE="<input>,<output>"
 * (dollars per million tokens) prices any model and wins over the table.
 */
const TABLE: [RegExp, Price][] = [
  [/^claude-opus-4-[0-4](?!\d)|^claude-opus-4-20/, price(15, 75)],
  [/^claude-opus-[4-9]/, price(5, 25)],
  [/^claude-sonnet-[4-9]|^claude-3-7-sonnet|^claude-3-5-sonnet/, price(3, 15)],
  [/^claude-haiku-[4-9]/, price(1, 5)],
  [/^claude-3-5-haiku/, price(0.8, 4)],
  [/^claude-3-haiku/, price(0.25, 1.25)],
]

export function priceOf(model: string, override?: string): Price | null {
  if (override) {
    const [input, output] = override.split(',').map(Number)
    if (Number.isFinite(input) && Number.isFinite(output) && input >= 0 && output >= 0) return price(input, output)
  }
  return TABLE.find(([re]) => re.test(model))?.[1] ?? null
}

export interface TokenCounts {
  inputTokens: number
  outputTokens: number
  cacheReadTokens: number
  cacheWriteTokens: number
}

/** Pure: dollars for the tokens, or null without a price. */
export function costOf(tokens: TokenCounts, p: Price | null): number | null {
  if (!p) return null
  const usd = (tokens.inputTokens * p.input + tokens.outputTokens * p.output + tokens.cacheReadTokens * p.cacheRead + tokens.cacheWriteTokens * p.cacheWrite) / 1e6
  return Math.round(usd * 1e6) / 1e6
}

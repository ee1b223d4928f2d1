import Anthropic, { APIError } from '@anthropic-ai/sdk'
import type { ReviewAgentSettings } from '../context.ts'
import { readReview, REVIEW_TOOL, reviewMessage, systemPrompt, type AgentReview, type ReviewInput } from './prompt.ts'

/** A current Claude model; ANTHROPIC_MODEL (or REVIEW_MODEL, for a different reviewer) overrides it. */
export const DEFAULT_REVIEW_MODEL = 'claude-sonnet-5-5'

/** Turns in which the model may correct a malformed submit_review before the call counts as failed. */
const MAX_TURNS = 3

/** A review that produced no verdict: an outage, a refused key, a malformed answer. Never a verdict. */
export class ReviewAgentError extends Error {
  override name = 'ReviewAgentError'
}

/**
 * The review agent's settings from the environment: ANTHROPIC_API_KEY (none: null, and campaigns
 * fall back, review/policy.ts), ANTHROPIC_BASE_URL, and REVIEW_MODEL or ANTHROPIC_MODEL.
 */
export function reviewAgentFromEnv(env: NodeJS.ProcessEnv): ReviewAgentSettings | null {
  const apiKey = env.ANTHROPIC_API_KEY?.trim()
  if (!apiKey) return null
  return {
    apiKey,
    baseURL: env.ANTHROPIC_BASE_URL?.trim() || undefined,
    model: env.REVIEW_MODEL?.trim() || env.ANTHROPIC_MODEL?.trim() || DEFAULT_REVIEW_MODEL,
  }
}

function explain(err: unknown, model: string): string {
  if (err instanceof APIError) {
    if (err.status === 401) return 'the Anthropic API refused ANTHROPIC_API_KEY (401): check the key'
    if (err.status === 404) return `review model "${model}" not found (404): set REVIEW_MODEL to a current Claude model id`
    return `Anthropic API error ${err.status ?? ''}: ${err.message}`.slice(0, 1000)
  }
  return `Anthropic API call failed: ${(err as Error).message}`.slice(0, 1000)
}

/**
 * Claude as the reviewer, through the real SDK (tests point it at a local Messages-API server).
 * One review is one forced tool call; the SDK retries each request (429, 5xx, lost connections)
 * with its own backoff, and whatever still fails is a ReviewAgentError for the runner to retry
 * later: a failure leaves the candidate waiting, it never approves or rejects it.
 */
export class ReviewAgent {
  readonly model: string
  private readonly client: Anthropic

  constructor(settings: ReviewAgentSettings) {
    this.model = settings.model ?? DEFAULT_REVIEW_MODEL
    this.client = new Anthropic({ apiKey: settings.apiKey, baseURL: settings.baseURL, maxRetries: settings.maxRetries ?? 3, timeout: settings.timeoutMs ?? 5 * 60_000 })
  }

  async review(input: ReviewInput, signal?: AbortSignal): Promise<AgentReview> {
    const messages: Anthropic.MessageParam[] = [{ role: 'user', content: reviewMessage(input) }]
    const system = systemPrompt(input)
    for (let turn = 0; turn < MAX_TURNS; turn++) {
      let reply: Anthropic.Message
      try {
        reply = await this.client.messages.create({
          model: this.model, max_tokens: 4000, system, messages,
          tools: [REVIEW_TOOL], tool_choice: { type: 'tool', name: REVIEW_TOOL.name },
        }, { signal })
      } catch (err) {
        throw new ReviewAgentError(explain(err, this.model))
      }
      const use = reply.content.find((b): b is Anthropic.ToolUseBlock => b.type === 'tool_use' && b.name === REVIEW_TOOL.name)
      messages.push({ role: 'assistant', content: reply.content as Anthropic.ContentBlockParam[] })
      if (!use) {
        messages.push({ role: 'user', content: 'Answer only by calling submit_review.' })
        continue
      }
      const review = readReview(use.input)
      if (typeof review !== 'string') return review
      messages.push({ role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, is_error: true, content: review }] })
    }
    throw new ReviewAgentError(`the review model gave no valid submit_review in ${MAX_TURNS} turns`)
  }
}

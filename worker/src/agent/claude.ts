import Anthropic, { APIConnectionError, APIError, APIUserAbortError } from '@anthropic-ai/sdk'
import type { AgentUsage } from '@autoresearch-grid/shared'
import { LIMITS } from '@autoresearch-grid/shared'
import { AgentError, emptyUsage, lastLines, type Agent, type AgentSession, type AgentTask, type Failure, type Proposal } from './agent.ts'
import { EditableFiles, FILE_TOOLS } from './file-tools.ts'
import { costOf, priceOf, type Price } from './pricing.ts'
import { firstMessage, repairMessage, systemPrompt } from './prompt.ts'
import { runSearch, SEARCH_TOOL } from '../swarm/search-tool.ts'
import { pause } from '../client/backoff.ts'

type MessageParam = Anthropic.MessageParam
type Message = Anthropic.Message
type ContentBlockParam = Anthropic.ContentBlockParam
type ToolResult = Anthropic.ToolResultBlockParam

/** A current Claude model; ANTHROPIC_MODEL overrides it. */
export const DEFAULT_MODEL = 'claude-sonnet-5-5'

export interface ClaudeOptions {
  apiKey: string
  model?: string
  /** Defaults to ANTHROPIC_BASE_URL (read by the SDK), else the public API. */
  baseURL?: string
  /** The SDK's own retries of one request (429, 5xx, overloaded, connection errors). */
  maxRetries?: number
  /** Further rounds of the SDK's retries, after a pause, before the experiment gives up. */
  retryRounds?: number
  /** First pause between rounds; doubled each round, with jitter. */
  retryBaseMs?: number
  /** Tool-use turns per proposal or repair before the session gives up. */
  maxTurns?: number
  maxTokens?: number
  timeoutMs?: number
  /** Dollars per million tokens; defaults to the table in pricing.ts. */
  price?: Price | null
}

/** Claude, from the environment: ANTHROPIC_API_KEY (required), ANTHROPIC_MODEL, ANTHROPIC_BASE_URL, ANTHROPIC_PRICE. */
export function claudeFromEnv(env: NodeJS.ProcessEnv): ClaudeAgent | null {
  const apiKey = env.ANTHROPIC_API_KEY?.trim()
  if (!apiKey) return null
  const model = env.ANTHROPIC_MODEL?.trim() || DEFAULT_MODEL
  return new ClaudeAgent({ apiKey, model, baseURL: env.ANTHROPIC_BASE_URL?.trim() || undefined, price: priceOf(model, env.ANTHROPIC_PRICE) })
}

/** Errors worth another round: rate limits, overload, server errors, lost connections. */
function transient(err: unknown): boolean {
  if (err instanceof APIUserAbortError) return false
  if (err instanceof APIConnectionError) return true
  return err instanceof APIError && (err.status === 408 || err.status === 409 || err.status === 429 || (err.status ?? 0) >= 500)
}

/** What to tell the user about an error retrying will not fix. */
function explain(err: unknown, model: string): string {
  if (err instanceof APIError) {
    if (err.status === 401) return 'the Anthropic API refused ANTHROPIC_API_KEY (401): check the key'
    if (err.status === 403) return 'the Anthropic API key may not use this model or API (403)'
    if (err.status === 404) return `model "${model}" not found (404): set ANTHROPIC_MODEL to a current Claude model id`
    if (err.status === 400) return `the Anthropic API rejected the request (400): ${err.message}`
    return `Anthropic API error ${err.status ?? ''}: ${err.message}`
  }
  return `Anthropic API call failed: ${(err as Error).message}`
}

export class ClaudeAgent implements Agent {
  readonly label: string
  readonly model: string
  private readonly client: Anthropic
  private readonly price: Price | null

  constructor(readonly options: ClaudeOptions) {
    this.model = options.model ?? DEFAULT_MODEL
    this.label = `claude:${this.model}`.slice(0, 80)
    this.price = options.price === undefined ? priceOf(this.model) : options.price
    this.client = new Anthropic({ apiKey: options.apiKey, baseURL: options.baseURL, maxRetries: options.maxRetries ?? 4, timeout: options.timeoutMs ?? 10 * 60_000 })
  }

  begin(task: AgentTask): AgentSession {
    return new ClaudeSession(this, this.client, task, this.price)
  }
}

class ClaudeSession implements AgentSession {
  private readonly messages: MessageParam[] = []
  private readonly files: EditableFiles
  private readonly tally = { requests: 0, inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0 }
  private attempts = 1
  /** Tool results owed to the model: the turn that called finish, answered by the next repair. */
  private owed: { results: ToolResult[]; finishId: string } | null = null
  private lastFiles: Record<string, string> | null = null

  constructor(private readonly agent: ClaudeAgent, private readonly client: Anthropic, private readonly task: AgentTask, private readonly price: Price | null) {
    this.files = new EditableFiles(task.files, task.unit.editableFiles)
    this.messages.push({ role: 'user', content: firstMessage(task) })
  }

  usage(): AgentUsage {
    return { ...emptyUsage(this.agent.label), ...this.tally, costUsd: costOf(this.tally, this.price), attempts: this.attempts }
  }

  propose(): Promise<Proposal> {
    return this.converse()
  }

  async repair(failure: Failure): Promise<Proposal | null> {
    if (!this.owed) return null
    this.attempts++
    const content: ContentBlockParam[] = [
      ...this.owed.results,
      { type: 'tool_result', tool_use_id: this.owed.finishId, is_error: true, content: repairMessage({ ...failure, logTail: lastLines(failure.logTail, 50) }) },
    ]
    this.owed = null
    this.messages.push({ role: 'user', content })
    const failed = this.lastFiles
    let proposal: Proposal
    try {
      proposal = await this.converse()
    } catch (err) {
      if (err instanceof AgentError) {
        this.task.log?.(`${this.task.unit.id}: the agent could not repair: ${err.message}`)
        return null
      }
      throw err
    }
    // Submitting the same files again is giving up: running them would fail the same way.
    return failed && JSON.stringify(proposal.files) === JSON.stringify(failed) ? null : proposal
  }

  private remember(p: Proposal): Proposal {
    this.lastFiles = p.files
    return p
  }

  /** Tool-use turns until the model calls finish. */
  private async converse(): Promise<Proposal> {
    const maxTurns = this.agent.options.maxTurns ?? 40
    let nudges = 0
    for (let turn = 0; turn < maxTurns; turn++) {
      const reply = await this.call()
      this.messages.push({ role: 'assistant', content: reply.content as ContentBlockParam[] })
      const uses = reply.content.filter((b): b is Anthropic.ToolUseBlock => b.type === 'tool_use')
      if (uses.length === 0) {
        if (++nudges > 2) throw new AgentError(`the model stopped (${reply.stop_reason}) without calling finish`)
        this.messages.push({ role: 'user', content: 'Continue with the tools; when your edit is complete, call finish.' })
        continue
      }
      const results: ToolResult[] = []
      let finish: { id: string; proposal: Proposal } | null = null
      for (const use of uses) {
        if (use.name === 'finish') {
          const parsed = this.readFinish(use.input)
          if (typeof parsed === 'string') results.push({ type: 'tool_result', tool_use_id: use.id, is_error: true, content: parsed })
          else finish = { id: use.id, proposal: parsed }
        } else if (use.name === SEARCH_TOOL.name && this.task.search) {
          const r = await runSearch(this.task.search, use.input)
          results.push({ type: 'tool_result', tool_use_id: use.id, is_error: r.isError || undefined, content: r.content })
        } else {
          const r = this.files.run(use.name, use.input)
          if (r.isError) this.task.log?.(`${this.task.unit.id}: tool ${use.name} refused: ${r.content.split('\n')[0].slice(0, 200)}`)
          results.push({ type: 'tool_result', tool_use_id: use.id, is_error: r.isError || undefined, content: r.content })
        }
      }
      if (finish) {
        this.owed = { results, finishId: finish.id }
        return this.remember(finish.proposal)
      }
      this.messages.push({ role: 'user', content: results })
    }
    throw new AgentError(`no finish after ${maxTurns} turns`)
  }

  /** finish's input as a proposal, or what is wrong with it (sent back as a tool error). */
  private readFinish(input: unknown): Proposal | string {
    const a = (input ?? {}) as Record<string, unknown>
    const description = typeof a.description === 'string' ? a.description.replace(/\s+/g, ' ').trim() : ''
    if (!description) return 'finish needs a one-line description of the change'
    const followUps = (Array.isArray(a.follow_ups) ? a.follow_ups : [])
      .filter((f): f is Record<string, unknown> => typeof f === 'object' && f !== null && typeof (f as Record<string, unknown>).title === 'string')
      .map(f => ({ title: String(f.title).trim().slice(0, LIMITS.hypothesisTitleChars), body: typeof f.body === 'string' ? f.body.slice(0, LIMITS.hypothesisBodyChars) : '' }))
      .filter(f => f.title.length >= 3)
      .slice(0, LIMITS.followUps)
    return {
      files: this.files.snapshot(),
      description: description.slice(0, LIMITS.descriptionChars),
      rationale: typeof a.rationale === 'string' ? a.rationale.trim().slice(0, 2000) : '',
      followUps,
    }
  }

  /** One model call: the SDK retries each request; rounds of that, with growing pauses, on top. */
  private async call(): Promise<Message> {
    const o = this.agent.options
    const rounds = o.retryRounds ?? 3
    for (let round = 0; ; round++) {
      try {
        const reply = await this.client.messages.create({
          model: this.agent.model,
          max_tokens: o.maxTokens ?? 16_000,
          system: [{ type: 'text', text: systemPrompt(this.task), cache_control: { type: 'ephemeral' } }],
          tools: this.task.search ? [...FILE_TOOLS, SEARCH_TOOL] : FILE_TOOLS,
          messages: this.messages,
        }, { signal: this.task.signal })
        this.count(reply)
        return reply
      } catch (err) {
        if (this.task.signal?.aborted) throw new AgentError('stopped')
        if (!transient(err)) throw new AgentError(explain(err, this.agent.model))
        if (round >= rounds) throw new AgentError(`${explain(err, this.agent.model)} (gave up after ${rounds + 1} rounds of retries)`)
        const wait = Math.min(60_000, (o.retryBaseMs ?? 5000) * 2 ** round) * (0.75 + Math.random() / 2)
        this.task.log?.(`${this.task.unit.id}: ${explain(err, this.agent.model)}; retrying in ${(wait / 1000).toFixed(1)}s`)
        await pause(wait, this.task.signal)
      }
    }
  }

  private count(reply: Message): void {
    const u = reply.usage
    this.tally.requests++
    this.tally.inputTokens += u?.input_tokens ?? 0
    this.tally.outputTokens += u?.output_tokens ?? 0
    this.tally.cacheReadTokens += u?.cache_read_input_tokens ?? 0
    this.tally.cacheWriteTokens += u?.cache_creation_input_tokens ?? 0
  }
}

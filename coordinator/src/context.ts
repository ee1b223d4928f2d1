import type { Db } from './db/open.ts'
import type { GitStore } from './git/store.ts'
import type { Bus } from './events/bus.ts'

/** What every coordinator module works with: storage, code, signals, settings and per-process state. */
export interface Ctx {
  db: Db
  git: GitStore
  bus: Bus
  dataDir: string
  settings: Settings
  now: () => number
  /** What this coordinator keeps in memory besides the database: caches, rate limits (see `StateKey`). */
  state: ProcessState
}

/**
 * One piece of a coordinator's in-memory state (a cache, a rate limiter). The module that owns it
 * declares the key next to its code; the value lives on the context, made on first use. So two
 * coordinators in one process (tests, tools) share nothing, and every such piece is found by
 * searching for `stateKey(`. Module-level maps did the same job invisibly (issue 18).
 */
export interface StateKey<T> {
  readonly name: string
  make(): T
}

export function stateKey<T>(name: string, make: () => T): StateKey<T> {
  return { name, make }
}

export class ProcessState {
  private readonly values = new Map<StateKey<unknown>, unknown>()
  of<T>(key: StateKey<T>): T {
    if (!this.values.has(key)) this.values.set(key, key.make())
    return this.values.get(key) as T
  }
}

export interface Settings {
  /** Seconds a lease lasts beyond the budget (start-up, compile, agent time); heartbeats renew it. */
  leaseMarginSeconds: number
  /** How often idle subscriptions re-check for work and expired leases (ms); also the review runner's tick. */
  pollMs: number
  /**
   * The review agent (review/agent.ts); null when the coordinator has no ANTHROPIC_API_KEY, and
   * campaigns that ask for one fall back (review/policy.ts). `coordinator start` reads the
   * environment; nothing else does, so tests and tools never pick up a developer's key.
   */
  reviewAgent: ReviewAgentSettings | null
  /** First pause before a failed review is asked again (ms); it doubles up to `reviewRetryMaxMs`. */
  reviewRetryMs: number
  reviewRetryMaxMs: number
  /** Units all workers of one contributor may hold at once (absent: units/assign.ts's default, 32). */
  maxOpenUnitsPerContributor?: number
  /** Open agent hypotheses one contributor may have in a campaign (absent: hypotheses/quota.ts's default, 30). */
  maxOpenProposalsPerContributor?: number
  /** Workers of one contributor seen within the hour beyond which a new name is refused (absent: workers/registry.ts's default, 256). */
  maxActiveWorkersPerContributor?: number
  /** How long heartbeats may keep one lease alive (absent: units/leases.ts's `maxHoldSeconds`, capacity + 1 lease lengths). */
  maxLeaseHoldSeconds?: number
  /** How long the audit log keeps the grid's traffic, leases and hellos (ms; absent: events/retention.ts's default, 7 days). */
  eventRetentionMs?: number
}

export interface ReviewAgentSettings {
  apiKey: string
  /** The Messages API to call; default: the public API (the CLI passes ANTHROPIC_BASE_URL). */
  baseURL?: string
  model?: string
  /** The SDK's own retries of one request (429, 5xx, connection errors). */
  maxRetries?: number
  /** Per request. */
  timeoutMs?: number
}

export const DEFAULT_SETTINGS: Settings = { leaseMarginSeconds: 600, pollMs: 2000, reviewAgent: null, reviewRetryMs: 30_000, reviewRetryMaxMs: 15 * 60_000 }

/** Record ids are defined in shared/src/ids.ts; re-exported here, where the coordinator's modules look for them. */
export { newId } from '@autoresearch-grid/shared'

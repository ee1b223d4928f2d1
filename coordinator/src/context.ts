import type { Db } from './db/open.ts'
import type { GitStore } from './git/store.ts'
import type { Bus } from './events/bus.ts'

/** What every coordinator module works with: storage, code, signals and settings. */
export interface Ctx {
  db: Db
  git: GitStore
  bus: Bus
  dataDir: string
  settings: Settings
  now: () => number
}

export interface Settings {
  /** Seconds a lease lasts beyond the budget (start-up, compile, agent time); heartbeats renew it. */
  leaseMarginSeconds: number
  /** How often idle subscriptions re-check for work and expired leases (ms). */
  pollMs: number
  /** Units all workers of one contributor may hold at once (absent: units/assign.ts's default, 32). */
  maxOpenUnitsPerContributor?: number
  /** Open agent hypotheses one contributor may have in a campaign (absent: hypotheses/quota.ts's default, 30). */
  maxOpenProposalsPerContributor?: number
}

export const DEFAULT_SETTINGS: Settings = { leaseMarginSeconds: 600, pollMs: 2000 }

export function newId(prefix: string): string {
  return `${prefix}_${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`
}

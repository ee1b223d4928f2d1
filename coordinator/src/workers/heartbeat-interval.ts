import { HEARTBEAT_MAX_SECONDS } from '@autoresearch-grid/shared'

/**
 * How often each worker heartbeats, given how many are connected. A heartbeat renews leases that
 * last the budget plus ten minutes and carries progress for the dashboard; every 5 s is plenty
 * for a few hundred workers, and at 10,000 it was 2,000 calls a second, more than the reports and
 * leases of the whole grid together (docs/PERFORMANCE.md, "Coordinator under load"). So the
 * coordinator spaces heartbeats out to keep their total rate near `perSecond`, never below
 * `minSeconds` apart nor above `maxSeconds`, which stays far inside any lease. Pure.
 */
export const HEARTBEAT = { minSeconds: 5, maxSeconds: HEARTBEAT_MAX_SECONDS, perSecond: 250 } as const

export function heartbeatSeconds(connected: number, o: { minSeconds: number; maxSeconds: number; perSecond: number } = HEARTBEAT): number {
  return Math.min(o.maxSeconds, Math.max(o.minSeconds, Math.ceil(connected / o.perSecond)))
}

import { stateKey, type Ctx } from '../context.ts'
import { UserError } from '../errors.ts'
import { DEFAULT_MAX_ACTIVE_WORKERS } from './registry.ts'

/**
 * How often one contributor's workers may say hello. Each hello is a transaction and a row of the
 * event log (kept a week: events/retention.ts); one token saying hello in a loop added ~1,000 a second
 * (test/hostile/worker-names.test.ts). A token bucket per contributor: twice as many at once as
 * it may have workers (all of them starting, or reconnecting after a coordinator restart, twice),
 * then one a second. A refused hello is `rate-limited`, which a worker's reconnect loop tries again later
 * (worker/src/client/feed.ts).
 */
const BUCKETS = stateKey('hellos per contributor', () => new Map<string, { tokens: number; at: number }>())
export const HELLOS_PER_SECOND = 1

export function takeHello(ctx: Pick<Ctx, 'state' | 'now' | 'settings'>, contributorId: string): void {
  const burst = 2 * (ctx.settings.maxActiveWorkersPerContributor ?? DEFAULT_MAX_ACTIVE_WORKERS)
  const buckets = ctx.state.of(BUCKETS)
  const now = ctx.now()
  const b = buckets.get(contributorId) ?? { tokens: burst, at: now }
  b.tokens = Math.min(burst, b.tokens + ((now - b.at) / 1000) * HELLOS_PER_SECOND)
  b.at = now
  if (b.tokens < 1) {
    buckets.set(contributorId, b)
    throw new UserError(`your workers said hello ${burst} times in quick succession, more than they have workers: wait ${Math.ceil((1 - b.tokens) / HELLOS_PER_SECOND)} s and say hello again`, 'rate-limited')
  }
  b.tokens -= 1
  buckets.set(contributorId, b)
  if (buckets.size > 10_000) for (const [k, v] of buckets) if (v.tokens >= burst - 1e-9 || now - v.at > 3_600_000) buckets.delete(k)
}

import { isIPv6 } from 'node:net'
import { stateKey } from '../context.ts'

/**
 * Failed authentications per remote address (DESIGN §11). A token can only be guessed as fast as
 * the coordinator answers, so after `maxFailures` refusals within `windowMs` an address is locked
 * out of worker and admin procedures for `blockMs`, valid token or not: answering a right guess
 * during the lock-out would tell the guesser it was right. The dashboard stays readable.
 * Pure bookkeeping with an injected clock, bounded to `maxAddresses` entries.
 */
export interface RateLimitSettings {
  maxFailures: number
  windowMs: number
  blockMs: number
  /** Addresses remembered at once; the oldest are forgotten first. */
  maxAddresses: number
}

export const AUTH_RATE_LIMIT: RateLimitSettings = { maxFailures: 20, windowMs: 60_000, blockMs: 60_000, maxAddresses: 10_000 }

interface Entry { failures: number[]; blockedUntil: number }

/**
 * The key an address is counted under: IPv4 as is (also when mapped into IPv6, as a dual-stack
 * socket reports it), IPv6 by its /64, which is what one host is usually given.
 */
export function addressKey(remote: string): string {
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(remote)
  if (mapped) return mapped[1]
  if (!isIPv6(remote)) return remote
  const [head, tail] = remote.includes('::') ? remote.split('::') : [remote, null]
  const groups = (s: string) => (s ? s.split(':').flatMap(g => (g.includes('.') ? ['0', '0'] : [g])) : [])
  const left = groups(head)
  const right = tail === null ? [] : groups(tail)
  const all = [...left, ...Array(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right]
  return `${all.slice(0, 4).map(g => parseInt(g, 16).toString(16)).join(':')}::/64`
}

export class FailedAuthLimiter {
  private readonly entries = new Map<string, Entry>()

  constructor(readonly settings: RateLimitSettings = AUTH_RATE_LIMIT, private readonly now: () => number = Date.now) {}

  /** Milliseconds the address must still wait before it may authenticate again; 0 when it may. */
  retryAfterMs(remote: string): number {
    const e = this.entries.get(addressKey(remote))
    return e ? Math.max(0, e.blockedUntil - this.now()) : 0
  }

  /** Records a refusal; returns true when it is the one that locked the address out. */
  fail(remote: string): boolean {
    const key = addressKey(remote)
    const now = this.now()
    const { maxFailures, windowMs, blockMs } = this.settings
    const e = this.entries.get(key) ?? { failures: [], blockedUntil: 0 }
    if (e.blockedUntil > now) return false
    e.failures = e.failures.filter(t => t > now - windowMs)
    e.failures.push(now)
    let locked = false
    if (e.failures.length >= maxFailures) {
      e.blockedUntil = now + blockMs
      e.failures = []
      locked = true
    }
    this.entries.delete(key) // re-inserted last: the map's order is least recently failed first
    this.entries.set(key, e)
    this.forgetOldest(now)
    return locked
  }

  /** How many addresses are remembered (for tests of the bound). */
  get size(): number {
    return this.entries.size
  }

  private forgetOldest(now: number): void {
    if (this.entries.size <= this.settings.maxAddresses) return
    for (const [key, e] of this.entries) {
      if (this.entries.size <= this.settings.maxAddresses) return
      if (e.blockedUntil <= now) this.entries.delete(key)
    }
    // Everyone left is locked out: forget the oldest lock-outs rather than grow without bound.
    for (const key of this.entries.keys()) {
      if (this.entries.size <= this.settings.maxAddresses) return
      this.entries.delete(key)
    }
  }
}

/** The limiter of one coordinator, shared by the API and the data routes: `ctx.state.of(AUTH_LIMITER)`. */
export const AUTH_LIMITER = stateKey('failed logins by address', () => new FailedAuthLimiter())

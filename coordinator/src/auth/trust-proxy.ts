import proxyAddr from '@fastify/proxy-addr'
import type { IncomingMessage } from 'node:http'

/**
 * Which proxies in front of the coordinator may name the client in X-Forwarded-For, as fastify's
 * `trustProxy` takes it: `true` (every hop: only where nothing can reach the coordinator but the
 * proxy), a hop count (the n hops nearest the coordinator), or addresses and subnets
 * (`127.0.0.1`, `10.0.0.0/8`, `loopback`, `uniquelocal`…: the safe choice). Without it, the
 * per-address limits (failed-login lock-out, WebSockets per address) see only the socket's peer:
 * behind a reverse proxy, that is the proxy, and one guesser locks everybody out.
 */
export type TrustProxy = true | number | string[]

/** Whether a hop (`i` 0: the socket's peer) may forward the client's address. */
export type TrustFunction = (address: string, i: number) => boolean

/** Parses `--trust-proxy`: `true`, a whole number of hops, or a comma-separated list of addresses/subnets. */
export function parseTrustProxy(value: string): TrustProxy {
  const v = value.trim()
  if (v === 'true') return true
  if (/^\d+$/.test(v)) {
    const hops = Number(v)
    if (hops < 1) throw new TypeError('a hop count must be at least 1 (leave --trust-proxy out to trust no proxy)')
    return hops
  }
  const list = v.split(',').map(s => s.trim()).filter(Boolean)
  if (!list.length) throw new TypeError('expected true, a hop count, or a comma-separated list of proxy addresses or subnets')
  trustFunction(list)
  return list
}

/**
 * The check fastify and the WebSocket upgrade both use, so HTTP and WebSocket callers get the same
 * address. Fastify's own handling of a bare hop count trusts no hop at all (it cannot vouch for
 * the socket's peer); here a hop count means what it says, as in Express: `--trust-proxy 1` trusts
 * the one proxy in front, whoever it is.
 */
export function trustFunction(t: TrustProxy): TrustFunction {
  if (t === true) return () => true
  if (typeof t === 'number') return (_address, i) => i < t
  // Throws a TypeError naming the entry that is not an address or subnet.
  return proxyAddr.compile(t)
}

/** The caller's address: the socket's peer, or the client a trusted proxy names. */
export function clientAddress(req: IncomingMessage, trust: TrustFunction | null): string {
  return trust ? proxyAddr(req, trust) : req.socket.remoteAddress ?? ''
}

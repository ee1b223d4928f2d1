import { createTRPCClient, createWSClient, TRPCClientError, wsLink, type TRPCClient, type TRPCLink } from '@trpc/client'
import { observable } from '@trpc/server/observable'
import WebSocket from 'ws'
import type { AppRouter } from '@autoresearch-grid/coordinator'
import { backoffMs } from './backoff.ts'
import { KEEPALIVE } from '@autoresearch-grid/shared'

export type Api = TRPCClient<AppRouter>

export interface Connection {
  api: Api
  close(): Promise<void>
  /** The coordinator's HTTP base URL, e.g. http://127.0.0.1:8377. */
  httpBase: string
}

/** Accepts http(s):// or ws(s):// coordinator URLs, with or without the /trpc path. */
export function coordinatorUrls(url: string): { ws: string; http: string } {
  let u: URL
  try {
    u = new URL(url)
  } catch {
    throw new Error(`"${url}" is not a URL: pass the coordinator's address, e.g. http://127.0.0.1:8377`)
  }
  const secure = u.protocol === 'https:' || u.protocol === 'wss:'
  if (!['http:', 'https:', 'ws:', 'wss:'].includes(u.protocol)) throw new Error(`"${url}" must start with http://, https://, ws:// or wss://`)
  const base = `${u.host}${u.pathname.replace(/\/trpc\/?$/, '').replace(/\/$/, '')}`
  return { ws: `${secure ? 'wss' : 'ws'}://${base}/trpc`, http: `${secure ? 'https' : 'http'}://${base}` }
}

/**
 * The socket's keep-alive (shared KEEPALIVE): a ping only after a quiet spell longer than the
 * heartbeat's, so a live worker never pings; it still finds a dead link in under 90 s.
 */
export const workerKeepAlive = { enabled: true, intervalMs: KEEPALIVE.idleMs, pongTimeoutMs: KEEPALIVE.pongWaitMs }

/**
 * One WebSocket to the coordinator for everything: calls and the assignment feed. The socket
 * reconnects by itself with exponential back-off and jitter; tRPC re-subscribes after a reconnect.
 * Once closed it stays closed: a call made after `close` fails at once. tRPC's client opens its
 * socket again for any call it is given, closed or not, and then reconnects for good: a heartbeat
 * whose spool read was still pending at `close` kept a finished `worker join` process alive,
 * knocking at a coordinator that was gone.
 */
export function connect(url: string, token: string, hooks: { onOpen?(): void; onClose?(cause?: unknown): void; maxRetryDelayMs?: number } = {}): Connection {
  const urls = coordinatorUrls(url)
  const client = createWSClient({
    url: urls.ws,
    WebSocket: WebSocket as unknown as typeof globalThis.WebSocket,
    connectionParams: () => ({ token }),
    retryDelayMs: attempt => backoffMs(attempt, Math.random, 500, hooks.maxRetryDelayMs ?? 30_000),
    keepAlive: workerKeepAlive,
    onOpen: hooks.onOpen,
    onClose: hooks.onClose,
  })
  let closed = false
  const afterClose: TRPCLink<AppRouter> = () => ({ op, next }) => closed
    ? observable(observer => observer.error(TRPCClientError.from(new Error(`${op.path}: the connection to the coordinator was closed`))))
    : next(op)
  const api = createTRPCClient<AppRouter>({ links: [afterClose, wsLink({ client })] })
  return {
    api, httpBase: urls.http,
    close: async () => {
      closed = true
      await client.close()
    },
  }
}

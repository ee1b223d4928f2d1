import Fastify, { type FastifyInstance } from 'fastify'
import { LIMITS } from '@autoresearch-grid/shared'
import type { Ctx } from './context.ts'
import { trustFunction, type TrustProxy } from './auth/trust-proxy.ts'
import { answerErrors } from './http/errors.ts'
import { trpcPlugin } from './http/trpc.ts'
import { tokenizerPlugin } from './http/tokenizer.ts'
import { gitPlugin } from './http/git.ts'
import { dataPlugin } from './http/data.ts'
import { dashboardPlugin } from './http/dashboard.ts'

export interface ServerOptions {
  logger?: boolean | object
  /** Proxies whose X-Forwarded-For names the client (auth/trust-proxy.ts); absent: none. */
  trustProxy?: TrustProxy
  /** How long a client may take to send a whole request (`REQUEST_TIMEOUT_MS`); tests shorten it. */
  requestTimeoutMs?: number
}

/**
 * How long a client may take to send one whole request, headers and body: 1 MiB (the largest
 * message) at under 10 KB/s. Responses (a clone, a data set) are not bounded by it, nor are
 * WebSockets once upgraded. Fastify's default, 0, left a request's body unbounded in time: a
 * client that announced a body and sent it a byte at a time held its socket forever
 * (test/hostile/slow-requests.test.ts). Node checks every connection on an interval, a quarter of
 * the timeout here, so a request is cut off between 1 and 1.25 times it.
 */
export const REQUEST_TIMEOUT_MS = 120_000

/**
 * One port serves everything, each part a fastify plugin of its own (http/):
 * - /trpc: the API over HTTP and WebSocket (http/trpc.ts);
 * - /tokenizer/<campaign>: the campaign's pinned tokenizer, so every worker prepares identical data;
 * - /git/<campaign>: a read-only git clone of the campaign's branch;
 * - /data/<campaign>: the prepared data set of a campaign whose data only the coordinator has (worker token);
 * - / and /status: the dashboard;
 * - /health: whether the process answers.
 * Refusals answer `{ error, code }` with the code's status (http/errors.ts, errors.ts).
 */
export async function buildServer(app: Ctx, opts: ServerOptions = {}): Promise<FastifyInstance> {
  const trust = opts.trustProxy === undefined ? null : trustFunction(opts.trustProxy)
  const requestTimeout = opts.requestTimeoutMs ?? REQUEST_TIMEOUT_MS
  const server = Fastify({ logger: opts.logger ?? false, bodyLimit: LIMITS.messageBytes, routerOptions: { maxParamLength: 5000 }, ...(trust ? { trustProxy: trust } : {}),
    requestTimeout, http: { headersTimeout: Math.min(60_000, requestTimeout), connectionsCheckingInterval: Math.ceil(requestTimeout / 4) } })
  answerErrors(server)
  await server.register(trpcPlugin, { app, trust })
  await server.register(tokenizerPlugin, { app })
  await server.register(gitPlugin, { app })
  await server.register(dataPlugin, { app })
  await server.register(dashboardPlugin, { app })
  server.get('/health', async () => ({ ok: true }))
  return server
}

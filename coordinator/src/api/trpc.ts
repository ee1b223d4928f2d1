import { initTRPC, TRPCError } from '@trpc/server'
import type { Ctx } from '../context.ts'
import { accessGeneration, authenticate, revokedAmong, type Principal } from '../auth/access.ts'
import { AUTH_LIMITER } from '../auth/rate-limit.ts'
import { bearer } from '../auth/tokens.ts'
import { ERROR_CODES, UserError, type ErrorCode } from '../errors.ts'

/** Subscriptions one WebSocket may hold open at once (`subscriptionSlots`). */
export const SUBSCRIPTIONS_PER_CONNECTION = 16

export interface ApiContext {
  app: Ctx
  principal: Principal | null
  /** Where the caller comes from, for rate limiting failed logins. */
  remote: string
  /** What this connection already checked (see `ConnectionChecks`); one per WebSocket, one per HTTP call. */
  checked: ConnectionChecks
}

/**
 * A WebSocket's context lives as long as the socket, so what its calls checked can be remembered
 * there: the token was live, and which worker rows its calls named, at a given access generation
 * (auth/access.ts). Nothing is read again until something that could change the answer happened;
 * every call read both before, one query each.
 */
export interface ConnectionChecks {
  /** The access generation at which the token was last found not revoked; null for never. */
  token: string | null
  /** Worker rows by id, as `ownWorker` returned them, at the generation they were read. */
  workers: Map<string, { generation: string; worker: unknown }>
  /** Subscriptions open on this connection, and how many it may hold (`subscriptionSlots`). */
  subscriptions: { open: number; limit: number }
}

/**
 * How a call came: subscriptions are served over the WebSocket only. tRPC would also stream them
 * over plain HTTP (server-sent events), one request each, outside the per-address bound on
 * WebSockets (http/trpc.ts): nothing of ours uses that, and an address could hold thousands.
 */
export type Transport = 'http' | 'websocket'

/** Builds the request context from an HTTP header or the WebSocket connection params. */
export function makeContext(app: Ctx, token: unknown, remote: string, transport: Transport): ApiContext {
  const subscriptions = { open: 0, limit: transport === 'websocket' ? SUBSCRIPTIONS_PER_CONNECTION : 0 }
  return { app, principal: authenticate(app, bearer(token)), remote, checked: { token: null, workers: new Map(), subscriptions } }
}

/** The stable code of an error as the caller sees it (errors.ts); tRPC's own refusals get the nearest one. */
function errorCodeOf(error: TRPCError): ErrorCode {
  if (error.cause instanceof UserError) return error.cause.code
  if (error.code === 'BAD_REQUEST' || error.code === 'PARSE_ERROR' || error.code === 'PAYLOAD_TOO_LARGE') return 'invalid'
  if (error.code === 'NOT_FOUND') return 'not-found'
  if (error.code === 'UNAUTHORIZED') return 'unauthorized'
  if (error.code === 'TOO_MANY_REQUESTS') return 'rate-limited'
  return 'internal'
}

/**
 * What a procedure declares about itself. `acknowledgeBeforeSync`: a mutation whose writes may be
 * lost to a power cut without harm is answered without waiting for the WAL's fdatasync (see
 * `durable`); its commit is still synced with the next one that waits.
 */
export interface ProcedureMeta { acknowledgeBeforeSync?: boolean }

const t = initTRPC.context<ApiContext>().meta<ProcedureMeta>().create({
  errorFormatter({ shape, error }) {
    return { ...shape, data: { ...shape.data, stack: undefined, errorCode: errorCodeOf(error) } }
  },
})

function toTRPCError(err: UserError): TRPCError {
  return new TRPCError({ code: ERROR_CODES[err.code].trpc, message: err.message, cause: err })
}

/**
 * Errors a caller can cause keep their message and get their code's tRPC code (errors.ts); the
 * rest stay 500s. A subscription fails while it runs, after the procedure returned, so its
 * stream is mapped too.
 */
const userErrors = t.middleware(async ({ type, next }) => {
  const result = await next()
  if (!result.ok && result.error.cause instanceof UserError) throw toTRPCError(result.error.cause)
  if (result.ok && type === 'subscription' && isAsyncIterable(result.data)) return { ...result, data: withUserErrors(result.data) }
  return result
})

function isAsyncIterable(x: unknown): x is AsyncIterable<unknown> {
  return typeof x === 'object' && x !== null && Symbol.asyncIterator in x
}

async function* withUserErrors<T>(events: AsyncIterable<T>): AsyncGenerator<T> {
  try {
    yield* events
  } catch (err) {
    if (err instanceof UserError) throw toTRPCError(err)
    throw err
  }
}

/**
 * Durable before acknowledged (DESIGN §11): a mutation's answer waits until what it committed is
 * on disk. Transactions commit without waiting for the disk; concurrent callers share one sync
 * (group commit, db/open.ts). A procedure can opt out with `acknowledgeBeforeSync` (ProcedureMeta).
 */
const durable = t.middleware(async ({ ctx, type, meta, next }) => {
  const result = await next()
  if (type === 'mutation' && !meta?.acknowledgeBeforeSync) await ctx.app.db.durable()
  return result
})

/**
 * At most `SUBSCRIPTIONS_PER_CONNECTION` subscriptions open on one connection. Each one is
 * a listener every bus event runs through (events/bus.ts) and a queue; without a bound one socket,
 * with no token, opened thousands (test/hostile/subscriptions.test.ts). The slot is taken before
 * the procedure runs, so subscriptions sent in one burst are counted, and given back once: when
 * the stream ends, or when tRPC aborts it (stopped, socket closed, or ended before it started,
 * when a generator's own `finally` never runs).
 */
const subscriptionSlots = t.middleware(async ({ ctx, type, signal, next }) => {
  if (type !== 'subscription') return next()
  const slots = ctx.checked.subscriptions
  if (slots.limit === 0) throw new UserError('subscriptions are served over the WebSocket only: connect to ws://<coordinator>/trpc (tRPC\'s wsLink)', 'invalid')
  if (slots.open >= slots.limit)
    throw new UserError(`at most ${slots.limit} subscriptions per connection: stop one (subscription.stop) before starting another, or open another connection`, 'rate-limited')
  slots.open++
  let held = true
  const release = () => {
    if (held) slots.open--
    held = false
  }
  signal?.addEventListener('abort', release, { once: true })
  const result = await next().catch((err: unknown) => {
    release()
    throw err
  })
  if (!result.ok || !isAsyncIterable(result.data)) {
    release()
    return result
  }
  return { ...result, data: releasing(result.data, release) }
})

async function* releasing<T>(events: AsyncIterable<T>, release: () => void): AsyncGenerator<T> {
  try {
    yield* events
  } finally {
    release()
  }
}

export const router = t.router
export const publicProcedure = t.procedure.use(userErrors).use(subscriptionSlots).use(durable)

/**
 * Whether the caller holds a live token of this kind. A WebSocket authenticated when it opened, so
 * revocation is checked again on a call whenever a token may have been revoked since (tokenLive). A refusal counts against the caller's address, and an
 * address with too many refusals is locked out for a while (auth/rate-limit.ts), except on connections whose token was found live before.
 */
function authorized<K extends Principal['kind']>(ctx: ApiContext, kind: K, refusal: string): asserts ctx is ApiContext & { principal: Extract<Principal, { kind: K }> } {
  const limiter = ctx.app.state.of(AUTH_LIMITER)
  // A connection that showed this live token before is no guesser: a lock-out of its address (one
  // shared with a hostile contributor behind the same NAT) refused its heartbeats and reports too
  // (test/hostile/shared-address.test.ts). New connections and HTTP calls still wait it out.
  const proven = ctx.principal?.kind === kind && ctx.checked.token !== null
  const wait = proven ? 0 : limiter.retryAfterMs(ctx.remote)
  if (wait > 0) throw new UserError(`too many failed logins from this address: try again in ${Math.ceil(wait / 1000)} s, with a valid token`, 'rate-limited')
  if (ctx.principal?.kind === kind && tokenLive(ctx, ctx.principal.tokenId)) return
  limiter.fail(ctx.remote)
  throw new UserError(refusal, 'unauthorized')
}

/** Whether the connection's token is still live: read again only after an access change. */
function tokenLive(ctx: ApiContext, tokenId: string): boolean {
  const generation = accessGeneration(ctx.app)
  if (ctx.checked.token === generation) return true
  if (revokedAmong(ctx.app, [tokenId]).length) return false
  ctx.checked.token = generation
  return true
}

export const workerProcedure = publicProcedure.use(({ ctx, next }) => {
  authorized(ctx, 'worker', 'a valid worker token is required: ask the maintainer for one (`coordinator token create <name>`) and pass --token')
  return next({ ctx: { ...ctx, principal: ctx.principal } })
})

export const adminProcedure = publicProcedure.use(({ ctx, next }) => {
  authorized(ctx, 'admin', 'the admin token is required for this')
  return next({ ctx: { ...ctx, principal: ctx.principal } })
})

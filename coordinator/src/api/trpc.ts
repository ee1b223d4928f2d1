import { initTRPC, TRPCError } from '@trpc/server'
import type { Ctx } from '../context.ts'
import { authenticate, type Principal } from '../auth/access.ts'
import { bearer } from '../auth/tokens.ts'
import { UserError } from '../campaigns/campaigns.ts'

export interface ApiContext {
  app: Ctx
  principal: Principal | null
  /** Where the caller comes from, for rate limiting failed logins. */
  remote: string
}

/** Builds the request context from an HTTP header or the WebSocket connection params. */
export function makeContext(app: Ctx, token: unknown, remote: string): ApiContext {
  return { app, principal: authenticate(app, bearer(token)), remote }
}

const t = initTRPC.context<ApiContext>().create({
  errorFormatter({ shape, error }) {
    // User errors carry a message that says what to do; internal errors stay generic.
    return { ...shape, data: { ...shape.data, stack: undefined } }
  },
})

/** Errors a caller can cause become BAD_REQUEST with their message; the rest stay 500s. */
const userErrors = t.middleware(async ({ next }) => {
  const result = await next()
  if (!result.ok && result.error.cause instanceof UserError) {
    throw new TRPCError({ code: 'BAD_REQUEST', message: result.error.cause.message, cause: result.error.cause })
  }
  return result
})

export const router = t.router
export const publicProcedure = t.procedure.use(userErrors)

export const workerProcedure = publicProcedure.use(({ ctx, next }) => {
  if (ctx.principal?.kind !== 'worker') {
    throw new TRPCError({ code: 'UNAUTHORIZED', message: 'a valid worker token is required: ask the maintainer for one (`coordinator token create <name>`) and pass --token' })
  }
  return next({ ctx: { ...ctx, principal: ctx.principal } })
})

export const adminProcedure = publicProcedure.use(({ ctx, next }) => {
  if (ctx.principal?.kind !== 'admin') throw new TRPCError({ code: 'UNAUTHORIZED', message: 'the admin token is required for this' })
  return next({ ctx: { ...ctx, principal: ctx.principal } })
})

import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify'
import { ERROR_CODES, UserError } from '../errors.ts'

/** What an HTTP route answers when it refuses: the message says what to do, the code is stable (errors.ts). */
export function refuse(reply: FastifyReply, err: UserError): FastifyReply {
  return reply.code(ERROR_CODES[err.code].http).send({ error: err.message, code: err.code })
}

/**
 * Errors thrown by any route: a `UserError` becomes its code's status with `{ error, code }`;
 * fastify's own refusals (a body too large, bad JSON) keep their status; anything else is a bug,
 * logged, and answered 500 without its message. Set on the root instance before the route plugins
 * are registered, so each plugin's context inherits it.
 */
export function answerErrors(server: FastifyInstance): void {
  server.setErrorHandler((err: FastifyError, req, reply) => {
    if (err instanceof UserError) return refuse(reply, err)
    if (err.statusCode && err.statusCode < 500) return reply.code(err.statusCode).send({ error: err.message, code: err.statusCode === 404 ? 'not-found' : 'invalid' })
    req.log.error(err)
    return reply.code(500).send({ error: 'internal error: the coordinator logged it', code: 'internal' })
  })
}

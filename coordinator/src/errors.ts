/**
 * Errors a caller can cause, in one place (issue 18). Each carries a message that says what to do
 * and a stable code a program can act on without parsing the message. The API (api/trpc.ts) puts
 * the code in `error.data.errorCode`; the HTTP routes (http/) answer `{ error, code }` with the
 * code's status. Anything thrown that is not a `UserError` is a bug: a 500 with a generic message.
 */

/** code → what it means, the HTTP status a route answers with, and the tRPC code. */
export const ERROR_CODES = {
  /** The input breaks a rule: the message says which and how to fix it. */
  invalid: { http: 400, trpc: 'BAD_REQUEST' },
  /** The thing named does not exist (a campaign, merge, hypothesis, worker, work unit, file). */
  'not-found': { http: 404, trpc: 'BAD_REQUEST' },
  /** The state changed under the caller (someone else got there first): look again, then retry. */
  conflict: { http: 409, trpc: 'BAD_REQUEST' },
  /** The caller's lease or claim is no longer current: its result is not needed; do not retry. */
  stale: { http: 410, trpc: 'BAD_REQUEST' },
  /** The caller may not do this (a banned worker). */
  forbidden: { http: 403, trpc: 'BAD_REQUEST' },
  /** Over a per-contributor quota: wait until some of it is used up. */
  quota: { http: 429, trpc: 'BAD_REQUEST' },
  /** No valid token for this: ask the maintainer for one. */
  unauthorized: { http: 401, trpc: 'UNAUTHORIZED' },
  /**
   * Too many requests: failed logins from this address, subscriptions on one socket, or a
   * contributor's reports (units/report-pace.ts), or hellos (workers/hello-pace.ts). Wait, then send it again.
   */
  'rate-limited': { http: 429, trpc: 'TOO_MANY_REQUESTS' },
  /** The coordinator's own files do not match what it recorded: only the maintainer can fix it. */
  damaged: { http: 500, trpc: 'INTERNAL_SERVER_ERROR' },
  /** A bug in the coordinator, never thrown on purpose: nothing the caller can do; it is logged. */
  internal: { http: 500, trpc: 'INTERNAL_SERVER_ERROR' },
} as const satisfies Record<string, { http: number; trpc: string }>
// Why most codes keep tRPC's BAD_REQUEST: workers decide whether to retry a report on the tRPC
// code (worker/src/loop/deliver.ts: BAD_REQUEST is final), and workers already out there must keep
// doing so; the precise reason travels beside it as `errorCode`.

export type ErrorCode = keyof typeof ERROR_CODES

export class UserError extends Error {
  override name = 'UserError'
  constructor(message: string, readonly code: ErrorCode = 'invalid') {
    super(message)
  }
}

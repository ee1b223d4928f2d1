import t from 'tap'
import { request } from 'node:http'
import { createTRPCClient, createWSClient, TRPCClientError, wsLink } from '@trpc/client'
import WebSocket from 'ws'
import type { AppRouter } from '../../src/api/router.ts'
import { CPU, httpClient, startCoordinator, wsClient } from '../helpers.ts'

// DESIGN §4 and §11: hashed, revocable tokens; admin separate from workers; refusals say what to do.

const hello = { name: 'gpu0', hardware: CPU, fingerprints: {}, version: 't' }
const codeOf = (err: unknown) => (err instanceof TRPCClientError ? (err.data as { code?: string } | undefined)?.code : undefined)

/** A tRPC call over HTTP from a chosen loopback source address (127.0.0.0/8 is all ours). */
function postFrom(localAddress: string, url: string, path: string, token: string | null, body: unknown): Promise<number> {
  const u = new URL(`${url}/trpc/${path}`)
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', localAddress,
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) } }, res => { res.resume(); res.on('end', () => resolve(res.statusCode!)) })
    req.on('error', reject)
    req.end(JSON.stringify(body))
  })
}

t.test('worker procedures refuse missing, wrong, oversized, admin and revoked tokens, over HTTP and WebSocket', async t => {
  const c = await startCoordinator()
  t.teardown(c.close)
  await c.campaign()
  const admin = httpClient(c.url, c.adminToken())
  const { token: revoked } = await admin.admin.createToken.mutate({ contributor: 'leaver' })
  t.same(await admin.admin.revokeTokens.mutate({ contributor: 'leaver' }), { revoked: 1 })
  const bad: [string, string | null][] = [['no token', null], ['a wrong token', 'arg_wrk_nope'], ['a 10 kB token', 'x'.repeat(10_000)],
    ['the admin token', c.adminToken()], ['a revoked token', revoked], ['a token in the wrong header form', `Basic ${revoked}`]]
  for (const [what, token] of bad) {
    await t.rejects(httpClient(c.url, token).worker.hello.mutate(hello), /worker token is required.*--token/, `HTTP, ${what}`)
    const ws = wsClient(c.url, token)
    await t.rejects(ws.api.worker.hello.mutate(hello), /worker token is required/, `WebSocket, ${what}`)
    ws.close()
  }
})

t.test('admin procedures refuse worker tokens and no token, over HTTP and WebSocket', async t => {
  const c = await startCoordinator()
  t.teardown(c.close)
  await c.campaign()
  const worker = c.workerToken('mallory')
  const ws = wsClient(c.url, worker)
  t.teardown(ws.close)
  for (const api of [httpClient(c.url, worker), ws.api, httpClient(c.url, null)]) {
    await t.rejects(api.admin.pause.mutate({ campaign: 'demo' }), /admin token is required/)
    await t.rejects(api.admin.createToken.mutate({ contributor: 'mallory2' }), /admin token is required/)
    await t.rejects(api.admin.banWorker.mutate({ workerId: 'w_x' }), /admin token is required/)
    await t.rejects(api.admin.revokeTokens.mutate({ contributor: 'alice' }), /admin token is required/)
  }
  const row = c.app.db.$client.prepare("select status from campaigns where name = 'demo'").get() as { status: string }
  t.equal(row.status, 'active', 'nothing changed')
  t.equal((c.app.db.$client.prepare("select count(*) as n from contributors where name = 'mallory2'").get() as { n: number }).n, 0)
})

t.test('revoking a token ends the WebSocket session it already opened: calls are refused and the feed stops', async t => {
  const c = await startCoordinator()
  t.teardown(c.close)
  await c.campaign()
  const admin = httpClient(c.url, c.adminToken())
  const { token } = await admin.admin.createToken.mutate({ contributor: 'leaver' })
  let closes = 0
  const client = createWSClient({ url: c.url.replace(/^http/, 'ws') + '/trpc', WebSocket: WebSocket as never, connectionParams: () => ({ token }),
    retryDelayMs: () => 100, onClose: () => { closes++ } })
  t.teardown(() => client.close())
  const api = createTRPCClient<AppRouter>({ links: [wsLink({ client })] })
  const { workerId } = await api.worker.hello.mutate(hello)
  const feedError = new Promise<unknown>(resolve => {
    api.worker.assignments.subscribe({ workerId }, { onData: () => {}, onError: resolve })
  })
  await api.worker.heartbeat.mutate({ workerId, units: [] })
  await admin.admin.revokeTokens.mutate({ contributor: 'leaver' })
  const refused = await api.worker.heartbeat.mutate({ workerId, units: [] }).then(() => null, err => err)
  t.equal(codeOf(refused), 'UNAUTHORIZED', 'the next call on the open socket is refused')
  const err = await feedError // ended by the coordinator's sweep of revoked sessions (or never: tap's timeout)
  t.equal(codeOf(err), 'UNAUTHORIZED', 'the running assignment feed ends, refused')
  t.ok(closes >= 1, 'the coordinator closed the session')
})

t.test('an address with 20 failed logins in a minute is locked out, even with a valid token; others and the dashboard are not', async t => {
  const c = await startCoordinator()
  t.teardown(c.close)
  await c.campaign()
  const valid = c.workerToken('alice')
  let failures = 0
  for (let i = 0; i < 20; i++) {
    const status = await postFrom('127.0.0.1', c.url, 'worker.hello', `arg_wrk_guess${i}`, hello)
    if (status === 401) failures++
  }
  t.equal(failures, 20, 'twenty wrong guesses are refused as such')
  t.equal(await postFrom('127.0.0.1', c.url, 'worker.hello', `arg_wrk_guess21`, hello), 429, 'the next guess is answered 429')
  t.equal(await postFrom('127.0.0.1', c.url, 'worker.hello', valid, hello), 429, 'so is a right one: a lock-out does not confirm guesses')
  const ws = wsClient(c.url, valid)
  t.teardown(ws.close)
  const err = await ws.api.worker.hello.mutate(hello).then(() => null, e => e)
  t.equal(codeOf(err), 'TOO_MANY_REQUESTS', 'over WebSocket too')
  t.match((err as Error).message, /too many failed logins from this address: try again in \d+ s/)
  t.equal(await postFrom('127.0.0.2', c.url, 'worker.hello', valid, hello), 200, 'another address is served')
  t.equal((await fetch(`${c.url}/health`)).status, 200, 'the health check answers')
  t.ok(await httpClient(c.url, null).dashboard.campaign.query({ name: 'demo' }), 'the public dashboard stays readable')
  t.comment('RESULT rate-limit: failures-before-lockout=20 lockout-status=429 valid-token-during-lockout=429 other-address=200')
})

import t from 'tap'
import { request } from 'node:http'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createTRPCClient, createWSClient, wsLink } from '@trpc/client'
import WebSocket from 'ws'
import type { AppRouter } from '../../src/api/router.ts'
import { openCoordinator } from '../../src/coordinator.ts'
import { buildServer } from '../../src/server.ts'
import { createWorkerToken } from '../../src/auth/access.ts'
import { parseTrustProxy, type TrustProxy } from '../../src/auth/trust-proxy.ts'
import { CPU } from '../helpers.ts'

// Behind a reverse proxy every connection comes from the proxy. The per-address lock-out must then
// key on the client the proxy names in X-Forwarded-For — but only when the maintainer says which
// proxy to believe (`coordinator start --trust-proxy`), or anyone could name any address.

const hello = { name: 'gpu0', hardware: CPU, fingerprints: {}, version: 't' }
const GUESSER = '203.0.113.7'
const HONEST = '198.51.100.9'

async function coordinator(t: { teardown(fn: () => unknown): void }, trustProxy?: TrustProxy) {
  const dir = await mkdtemp(join(tmpdir(), 'arg-proxy-'))
  const app = await openCoordinator(dir, { pollMs: 200 })
  const server = await buildServer(app, { trustProxy })
  const url = await server.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(async () => { await server.close(); app.close(); await rm(dir, { recursive: true, force: true }) })
  return { url, token: createWorkerToken(app, 'alice').token }
}

/** worker.hello over HTTP through "the proxy" (this process, on 127.0.0.1), naming `client` as the caller. */
function helloVia(url: string, client: string, token: string): Promise<number> {
  const u = new URL(`${url}/trpc/worker.hello`)
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, 'x-forwarded-for': client } }, res => { res.resume(); res.on('end', () => resolve(res.statusCode!)) })
    req.on('error', reject)
    req.end(JSON.stringify(hello))
  })
}

/** The same over a WebSocket whose upgrade request carries X-Forwarded-For. */
async function wsHelloVia(url: string, client: string, token: string): Promise<string> {
  class Forwarded extends WebSocket {
    constructor(address: string, protocols?: string | string[]) {
      super(address, protocols, { headers: { 'x-forwarded-for': client } })
    }
  }
  const ws = createWSClient({ url: url.replace(/^http/, 'ws') + '/trpc', WebSocket: Forwarded as never, connectionParams: () => ({ token }) })
  try {
    const api = createTRPCClient<AppRouter>({ links: [wsLink({ client: ws })] })
    return await api.worker.hello.mutate(hello).then(() => 'ok', (err: Error) => err.message)
  } finally {
    ws.close()
  }
}

/** 20 failed logins in a row (the lock-out's bound) from `client` as the proxy names it. */
async function guess(url: string, client: string) {
  for (let i = 0; i < 20; i++) await helloVia(url, client, `arg_wrk_guess${i}`)
}

t.test('--trust-proxy takes true, a hop count, or addresses and subnets, and refuses anything else', async t => {
  t.equal(parseTrustProxy('true'), true)
  t.equal(parseTrustProxy('2'), 2)
  t.same(parseTrustProxy('127.0.0.1, 10.0.0.0/8'), ['127.0.0.1', '10.0.0.0/8'])
  t.same(parseTrustProxy('loopback,uniquelocal'), ['loopback', 'uniquelocal'])
  t.throws(() => parseTrustProxy('0'), /at least 1/)
  t.throws(() => parseTrustProxy('proxy.example.org'), /invalid IP address/)
  t.throws(() => parseTrustProxy(' , '), /expected true, a hop count/)
})

t.test('without --trust-proxy, X-Forwarded-For is ignored: a lock-out hits everyone behind the proxy', async t => {
  const c = await coordinator(t)
  await guess(c.url, GUESSER)
  t.equal(await helloVia(c.url, HONEST, c.token), 429, 'another client, same proxy: locked out too')
  t.match(await wsHelloVia(c.url, HONEST, c.token), /too many failed logins/, 'over WebSocket as well')
})

t.test('with --trust-proxy naming the proxy, the lock-out is per client, over HTTP and WebSocket', async t => {
  for (const trust of [['loopback'], ['127.0.0.1'], 1] as TrustProxy[]) {
    const c = await coordinator(t, trust)
    await guess(c.url, GUESSER)
    t.equal(await helloVia(c.url, GUESSER, c.token), 429, `${JSON.stringify(trust)}: the guesser is locked out`)
    t.match(await wsHelloVia(c.url, GUESSER, c.token), /too many failed logins/, 'on WebSocket too')
    t.equal(await helloVia(c.url, HONEST, c.token), 200, 'another client behind the same proxy is served')
    t.equal(await wsHelloVia(c.url, HONEST, c.token), 'ok', 'on WebSocket too')
  }
})

t.test('X-Forwarded-For from a peer that is not a trusted proxy is ignored', async t => {
  const c = await coordinator(t, ['10.0.0.1'])
  await guess(c.url, GUESSER)
  t.equal(await helloVia(c.url, HONEST, c.token), 429, 'the header did not let the caller pick its address')
})

import t, { type Test } from 'tap'
import { connect, type Socket } from 'node:net'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openCoordinator } from '../../src/coordinator.ts'
import { buildServer } from '../../src/server.ts'
import { createWorkerToken } from '../../src/auth/access.ts'

// Slowloris: a client that sends a request a byte at a time, or sends its headers and then never
// the body it announced, holds a socket and a file descriptor for as long as it likes. HTTP
// requests are not bounded per address as WebSockets are (a proxy's clients share one), so the
// bound is time: a whole request within the request timeout. Node bounds the headers (60 s) by
// itself; fastify turned the bound on the body off (requestTimeout 0), and a report's body could
// be dribbled forever, on as many sockets as the machine had descriptors.

const TIMEOUT_MS = 1500

async function coordinator(t: Test) {
  const dir = await mkdtemp(join(tmpdir(), 'arg-coord-'))
  const app = await openCoordinator(dir, { pollMs: 200 })
  const server = await buildServer(app, { requestTimeoutMs: TIMEOUT_MS })
  const url = await server.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(async () => { await server.close(); app.close(); await rm(dir, { recursive: true, force: true }) })
  return { app, url: new URL(url) }
}

/** Resolves with how long the server kept the socket open, or null if it was still open after `maxMs`. */
function heldFor(socket: Socket, maxMs: number): Promise<number | null> {
  const start = Date.now()
  return new Promise(resolve => {
    const timer = setTimeout(() => { socket.destroy(); resolve(null) }, maxMs)
    socket.on('data', () => {})
    socket.once('close', () => { clearTimeout(timer); resolve(Date.now() - start) })
  })
}

function open(url: URL): Promise<Socket> {
  return new Promise(resolve => { const s = connect(Number(url.port), url.hostname, () => resolve(s)); s.on('error', () => {}) })
}

t.test('a request whose body never comes, or comes a byte at a time, is cut off at the request timeout', async t => {
  const c = await coordinator(t)
  const token = createWorkerToken(c.app, 'mallory', 'm@example.org').token
  const stalled = await open(c.url)
  stalled.write(`POST /trpc/worker.report HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"workerId":`)
  const dribbled = await open(c.url)
  dribbled.write('GET /git/demo/info/refs HTTP/1.1\r\nHost: x\r\n')
  const drip = setInterval(() => dribbled.writable && dribbled.write('X-A: b\r\n'), 200)
  t.teardown(() => clearInterval(drip))
  // Node checks its connections on an interval of its own: allow a few rounds of it.
  const [a, b] = await Promise.all([heldFor(stalled, 20 * TIMEOUT_MS), heldFor(dribbled, 20 * TIMEOUT_MS)])
  t.ok(a !== null, `a body that never comes: the socket was closed after ${a} ms`)
  t.ok(b !== null, `headers a line at a time: the socket was closed after ${b} ms`)
  const health = await fetch(new URL('/health', c.url))
  t.equal(health.status, 200, 'others are served')
})

import t from 'tap'
import WebSocket from 'ws'
import { SERVER_LIMITS } from '../../src/http/trpc.ts'
import { CPU, startCoordinator, wsClient } from '../helpers.ts'

// DESIGN §11, bounded queues: one socket cannot hold an unbounded number of subscriptions. Each
// one is a listener on the coordinator's bus that every event of every campaign runs through, so
// a client that opened thousands on the sockets its address may hold made every report, heartbeat
// and merge call thousands of functions, and kept their queues in memory, with no token at all.

const listeners = (c: Awaited<ReturnType<typeof startCoordinator>>) => (c.app.bus as unknown as { emitter: { listenerCount(e: string): number } }).emitter.listenerCount('event')

function open(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url.replace(/^http/, 'ws') + '/trpc')
    ws.once('open', () => resolve(ws))
    ws.once('error', reject)
  })
}

t.test(`one socket holds at most ${SERVER_LIMITS.subscriptionsPerSocket} subscriptions; the rest are refused with a reason, and a freed place can be taken again`, async t => {
  const c = await startCoordinator()
  t.teardown(c.close)
  const ws = await open(c.url)
  t.teardown(() => ws.terminate())
  const before = listeners(c)
  const answers = new Map<number, { result?: { type: string }; error?: { message: string } }>()
  ws.on('message', data => {
    const m = JSON.parse(String(data)) as { id: number; result?: { type: string }; error?: { message: string } }
    if (!answers.has(m.id) || m.error) answers.set(m.id, m)
  })
  const ASKED = 500
  for (let id = 1; id <= ASKED; id++) ws.send(JSON.stringify({ id, method: 'subscription', params: { path: 'dashboard.live', input: { campaign: null } } }))
  while (answers.size < ASKED) await new Promise(r => setTimeout(r, 20))
  const refused = [...answers.values()].filter(a => a.error)
  t.equal(ASKED - refused.length, SERVER_LIMITS.subscriptionsPerSocket, 'as many as the limit are started')
  t.match(refused[0]?.error?.message, /at most \d+ subscriptions per connection/, 'the others are told why')
  t.ok(listeners(c) - before <= SERVER_LIMITS.subscriptionsPerSocket, `the bus holds ${listeners(c) - before} listeners of this socket`)

  // Stopping one frees its place.
  const started = [...answers.entries()].find(([, a]) => !a.error)![0]
  ws.send(JSON.stringify({ id: started, method: 'subscription.stop' }))
  await new Promise(r => setTimeout(r, 200))
  answers.delete(ASKED + 1)
  ws.send(JSON.stringify({ id: ASKED + 1, method: 'subscription', params: { path: 'dashboard.live', input: { campaign: null } } }))
  while (!answers.has(ASKED + 1)) await new Promise(r => setTimeout(r, 20))
  t.notOk(answers.get(ASKED + 1)!.error, 'a new subscription takes the freed place')

  // Closing the socket frees them all.
  ws.close()
  while (listeners(c) > before) await new Promise(r => setTimeout(r, 20))
  t.pass('closing the socket removes its listeners')
})

t.test('subscriptions over plain HTTP (server-sent events) are refused: each would be a listener outside the per-address bound on WebSockets', async t => {
  const c = await startCoordinator()
  t.teardown(c.close)
  const before = listeners(c)
  const streams: AbortController[] = []
  t.teardown(() => streams.forEach(s => s.abort()))
  const answers: string[] = []
  for (let i = 0; i < 50; i++) {
    const ctrl = new AbortController()
    streams.push(ctrl)
    const res = await fetch(`${c.url}/trpc/dashboard.live?input=${encodeURIComponent(JSON.stringify({ campaign: null }))}`, { signal: ctrl.signal })
    const reader = res.body!.getReader()
    const first = await reader.read()
    answers.push(new TextDecoder().decode(first.value))
  }
  t.equal(listeners(c), before, 'no stream holds a listener')
  t.match(answers[0], /subscriptions are served over the WebSocket only/, 'the client is told where to subscribe')
})

t.test('a feed\'s input is bounded: a worker cannot pin a megabyte of fingerprints in each feed it holds', async t => {
  const c = await startCoordinator()
  t.teardown(c.close)
  await c.campaign('demo')
  const { api, close } = wsClient(c.url, c.workerToken('mallory'))
  t.teardown(close)
  const { workerId } = await api.worker.hello.mutate({ name: 'gpu0', hardware: CPU, fingerprints: {}, version: 't' })
  const subscribe = (fingerprints: Record<string, string>) => new Promise<string>(resolve => {
    const sub = api.worker.assignments.subscribe({ workerId, fingerprints }, {
      onStarted: () => { sub.unsubscribe(); resolve('started') },
      onError: e => resolve(e.message),
    })
  })
  // ~900 KB: 12,000 campaigns' fingerprints, none of which exist; kept for the feed's lifetime.
  const many = Object.fromEntries(Array.from({ length: 12_000 }, (_, i) => [`c${i}`, 'f'.repeat(64)]))
  t.match(await subscribe(many), /fingerprints of at most \d+ campaigns/, 'twelve thousand campaigns\' fingerprints are refused')
  t.match(await subscribe({ demo: 'f'.repeat(4000) }), /too_big|at most 128|Too big/i, 'a fingerprint is a hash, not a blob')
  t.equal(await subscribe({ demo: 'f'.repeat(64) }), 'started', 'a worker\'s own fingerprints are taken')
})

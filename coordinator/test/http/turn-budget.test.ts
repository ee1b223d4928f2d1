import t, { type Test } from 'tap'
import { EventEmitter, once } from 'node:events'
import type { AddressInfo } from 'node:net'
import WebSocket, { WebSocketServer } from 'ws'
import { TurnBudget } from '../../src/http/turn-budget.ts'

// src/http/turn-budget.ts: WebSocket messages handled in one turn of the event loop are bounded, so
// timers and the end-of-turn work (tick batches) run between them. Real sockets on loopback; each
// message's handler busy-waits 2 ms (the cost of a report, roughly). Nothing here asserts on elapsed
// time: it counts messages handled between two runs of a 1 ms timer, which is how many a turn took.

const HANDLER_MS = 2
const busy = (ms: number) => { const end = performance.now() + ms; while (performance.now() < end) { /* the handler's work */ } }

interface Flood { handled: Map<number, number[]>; mostInOneTurn: number; turns: number; total: number }

/** `clients` sockets send `each` numbered messages at once; the server handles them through `budget` (or none). */
async function flood(t: Test, budget: TurnBudget | null, clients: number, each: number, later = false): Promise<Flood> {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' })
  await once(wss, 'listening')
  const handled = new Map<number, number[]>()
  let total = 0
  let sinceTick = 0
  let mostInOneTurn = 0
  let turns = 0
  const tick = setInterval(() => { if (sinceTick) turns++; sinceTick = 0 }, 1)
  const done = new Promise<void>(resolve => {
    wss.on('connection', ws => {
      budget?.gate(ws)
      ws.on('message', async data => {
        const [client, seq] = String(data).split(':').map(Number)
        // As a tRPC procedure: `later`, the work comes after an await, once the listener has returned.
        if (later) await Promise.resolve()
        busy(HANDLER_MS)
        handled.set(client, [...(handled.get(client) ?? []), seq])
        mostInOneTurn = Math.max(mostInOneTurn, ++sinceTick)
        if (++total === clients * each) resolve()
      })
    })
  })
  const port = (wss.address() as AddressInfo).port
  const sockets = await Promise.all(Array.from({ length: clients }, async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}`)
    await once(ws, 'open')
    return ws
  }))
  sockets.forEach((ws, c) => { for (let i = 0; i < each; i++) ws.send(`${c}:${i}`) })
  await done
  clearInterval(tick)
  for (const ws of sockets) ws.close()
  await new Promise<void>(resolve => wss.close(() => resolve()))
  t.teardown(() => clearInterval(tick))
  return { handled, mostInOneTurn, turns, total }
}

t.test('without a budget one turn handles whole bursts of many sockets; with one, about a budget\'s worth', async t => {
  const without = await flood(t, null, 20, 40)
  t.ok(without.mostInOneTurn >= 20, `without: up to ${without.mostInOneTurn} messages (${without.mostInOneTurn * HANDLER_MS} ms of handlers) in one turn`)

  const budget = new TurnBudget(20)
  const gated = await flood(t, budget, 20, 40)
  t.equal(gated.total, 800, 'every message handled')
  // A turn: what fits in the budget, plus the one that crosses it (direct and queued share it).
  t.ok(gated.mostInOneTurn <= 20 / HANDLER_MS + 2, `with a 20 ms budget: at most ${gated.mostInOneTurn} messages in one turn`)
  t.ok(gated.turns >= 800 / (20 / HANDLER_MS + 2), `${gated.turns} turns, with timers between them`)
  for (const [client, seqs] of gated.handled) t.same(seqs, Array.from({ length: 40 }, (_, i) => i), `socket ${client}: its messages in the order sent`)
  t.equal(budget.waiting, 0, 'nothing left waiting')
})

t.test('work a handler does after it returned (a procedure\'s awaits) counts against the turn too', async t => {
  const budget = new TurnBudget(20)
  const gated = await flood(t, budget, 20, 40, true)
  t.equal(gated.total, 800, 'every message handled')
  t.ok(gated.mostInOneTurn <= 20 / HANDLER_MS + 2, `at most ${gated.mostInOneTurn} messages in one turn`)
  for (const [client, seqs] of gated.handled) t.same(seqs, Array.from({ length: 40 }, (_, i) => i), `socket ${client}: in order`)
})

/** A socket as the budget sees one: an emitter that can be paused, with a ready state; its handler costs 2 ms of `clock`. */
function fakeSocket(name: string, seen: string[], clock: { ms: number }) {
  const ws = Object.assign(new EventEmitter(), {
    readyState: WebSocket.OPEN as number, paused: false,
    pause() { this.paused = true }, resume() { this.paused = false },
  })
  ws.on('message', (data: Buffer) => { seen.push(`${name}:${data}`); clock.ms += HANDLER_MS })
  return ws
}
const turn = () => new Promise(r => setImmediate(r))

t.test('the keep-alive is never held; a socket that closes while its messages wait takes them with it', async t => {
  // Time is the handlers' alone (a clock they advance): the machine's load cannot move what a turn holds.
  const clock = { ms: 0 }
  const budget = new TurnBudget(5, () => clock.ms)
  const seen: string[] = []
  const a = fakeSocket('a', seen, clock)
  const b = fakeSocket('b', seen, clock)
  // Gated before anything listens, as the server does; the listeners above came first here, which
  // the wrapper does not mind (it wraps emit itself).
  budget.gate(a as unknown as WebSocket)
  budget.gate(b as unknown as WebSocket)
  for (let i = 0; i < 10; i++) a.emit('message', Buffer.from(String(i)), false)
  t.same(seen, ['a:0'], 'one handled at once: the others came in the same synchronous run')
  t.equal(budget.waiting, 9)
  t.ok(a.paused, 'a socket with 8 messages waiting is no longer read')
  b.emit('message', Buffer.from('PING'), false)
  t.equal(seen.at(-1), 'b:PING', 'a PING is handled at once, queue or not')
  b.emit('message', Buffer.from('x'), false)
  t.equal(seen.at(-1), 'b:PING', 'anything else waits behind the queue')
  t.notOk(b.paused, 'a socket with one message waiting is still read (its client\'s keep-alive PING must get through)')
  await turn()
  t.same(seen.slice(2), ['a:1'], 'the end of the turn handles what its budget has left (a:0 and the PING took 4 ms of 5)')
  await turn()
  t.same(seen.slice(3), ['a:2', 'a:3', 'a:4'], 'the next turn a whole budget\'s worth, in order')
  t.notOk(a.paused, 'read again once fewer than 8 of its messages wait')
  a.readyState = WebSocket.CLOSED
  while (budget.waiting) await turn()
  t.same(seen.slice(6), ['b:x'], 'the closed socket\'s waiting messages are dropped; the other\'s handled')
})

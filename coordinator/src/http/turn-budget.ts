import { performance } from 'node:perf_hooks'
import WebSocket from 'ws'

/**
 * A bound on how long the event loop spends on WebSocket messages before it lets the rest of the
 * coordinator run: its timers (the staged objects' pack window, sweeps), its tick batches (leases,
 * heartbeats: db/tick-batch.ts waits for the end of the turn) and its disk syncs' callbacks.
 *
 * Why: libuv reads every socket that is ready in one poll phase, up to 48 × 1,024 of them before it
 * looks at a timer again, and a socket's read hands over every message it has buffered. At 10,000
 * workers and 600 reports a second offered, one turn of the loop lasted 28-31 s (docs/PERFORMANCE.md,
 * "Fourteenth pass"): no lease was written, no pack, no timer ran, for the whole turn.
 *
 * Now a message is handled at once only while less than `budgetMs` has passed since the turn's first
 * message and nothing is waiting. Otherwise it waits in a queue, in arrival order; a socket with
 * HELD_PER_SOCKET messages waiting stops being read (`pause`: the kernel's buffers and TCP push back
 * on the sender) until one of them has been handled. The queue is worked through at the end of each
 * turn (setImmediate) while the turn's budget lasts, so the timers and I/O of the coordinator get a
 * turn between. Nothing is dropped; a socket's messages keep their order; a socket that closes
 * meanwhile has its waiting messages dropped with it, as its unread bytes would be. The keep-alive's
 * PING and PONG are never held: a PONG held past tRPC's wait would close a live connection.
 */
export class TurnBudget {
  /** When this turn handled its first message; null before it has. */
  private turnStart: number | null = null
  private readonly queue: (() => void)[] = []
  /** Immediates of this turn's end not yet run (schedule). */
  private pending = 0
  /** A message was just handled at once and its procedure has not run on yet (see `gate`). */
  private justHandled = false

  constructor(readonly budgetMs: number, private readonly now: () => number = () => performance.now()) {}

  /** Messages waiting now (the tests read it). */
  get waiting(): number {
    return this.queue.length
  }

  /** Puts a socket's messages under the budget; call before anything listens for them. */
  gate(ws: WebSocket): void {
    const emit = ws.emit.bind(ws) as (event: string | symbol, ...args: unknown[]) => boolean
    let held = 0
    ws.emit = ((event: string | symbol, ...args: unknown[]): boolean => {
      if (event !== 'message' || keepAlive(args)) return emit(event, ...args)
      // At once: one message per synchronous run. A socket's read hands over all the messages it
      // holds in one loop, before any of their procedures has gone on past its first await: they
      // would all pass a budget that sees none of their cost. The rest wait for the slots.
      if (!this.justHandled && held === 0 && this.queue.length === 0 && this.open()) {
        this.justHandled = true
        queueMicrotask(() => { this.justHandled = false })
        this.schedule()
        return emit(event, ...args)
      }
      if (++held === HELD_PER_SOCKET) ws.pause()
      this.queue.push(() => {
        if (held-- === HELD_PER_SOCKET) ws.resume()
        if (ws.readyState === WebSocket.OPEN) emit(event, ...args)
      })
      this.schedule()
      return true
    }) as WebSocket['emit']
  }

  /**
   * Whether this turn may handle another message. The time is counted from the turn's first message
   * to now, so it holds what the messages before did after their handlers returned (a procedure
   * runs on in promise callbacks, which Node runs after each socket's read and each immediate).
   */
  private open(): boolean {
    const now = this.now()
    if (this.turnStart === null) this.turnStart = now
    return now - this.turnStart < this.budgetMs
  }

  /**
   * The end of the turn, in immediates: one that closes it when nothing waits; SLOTS when messages
   * wait, each handling one while the budget lasts (Node runs promise callbacks between immediates,
   * so each slot sees what the ones before cost). The last to run closes the turn, and opens the
   * next one's slots if messages still wait.
   */
  private schedule(): void {
    const want = this.queue.length ? SLOTS : 1
    while (this.pending < want) {
      this.pending++
      setImmediate(this.slot)
    }
  }

  private readonly slot = (): void => {
    this.pending--
    if (this.queue.length && this.open()) this.queue.shift()!()
    if (this.pending > 0) return
    this.turnStart = null
    if (this.queue.length) this.schedule()
  }
}

/**
 * Messages of one socket that may wait before it is no longer read. A worker has one or two calls
 * out at a time (a report, a heartbeat); a client that sends without waiting for answers is held to
 * this many, and TCP pushes back on the rest. Below it the socket is still read: a paused socket
 * leaves the worker's own keep-alive PING unanswered, and the worker drops a connection whose PONG
 * is 10 s late (worker/src/client/connect.ts), which a queue under load can take.
 */
const HELD_PER_SOCKET = 8

/** The most waiting messages one turn handles (its budget usually ends it sooner). */
const SLOTS = 64

/** tRPC's keep-alive messages: the text PING or PONG. */
function keepAlive(args: unknown[]): boolean {
  const [data, isBinary] = args
  return !isBinary && Buffer.isBuffer(data) && data.length === 4 && (data.equals(PING) || data.equals(PONG))
}
const PING = Buffer.from('PING')
const PONG = Buffer.from('PONG')

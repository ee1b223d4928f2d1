import type { AssignmentEvent, Hardware, HelloReply, Progress } from '@autoresearch-grid/shared'
import { connect, type Api, type Connection } from './connect.ts'
import { ResumableFeed } from './feed.ts'

/** A unit whose lease this worker keeps: held, or its result waiting in the spool. */
export interface Lease {
  unitId: string
  leaseToken: string
  progress: Progress | null
}

/** What the session reads from its lane whenever it talks to the coordinator. */
export interface LaneState {
  /** The units in hand, with their progress. */
  held(): Lease[]
  /** Results not yet delivered: their leases are kept too. */
  spooled(): Promise<Lease[]>
  /** Campaign → fingerprint of the data prepared for it (filled in as data gets prepared). */
  fingerprints: Record<string, string>
  /** How many units the lane wants in hand. */
  capacity(): number
  /** Hashes of the sources the lane holds: units with one of them come without it (client/sources.ts). */
  sources?(): string[]
}

export interface SessionOptions {
  url: string
  token: string
  /** How this worker introduces itself in `worker.hello`. */
  identity: { name: string; hardware: Hardware; version: string; agent: string }
  lane: LaneState
  log(line: string): void
  /** Longest pause between reconnection attempts (default 30 s). */
  reconnectMaxMs?: number
  /** The socket is back: a good moment to deliver what waited. */
  onOnline?(): void
  /** An event of the assignment feed (units, cancellations, a new best). */
  onEvent(e: AssignmentEvent): void
  /** The coordinator cancelled a unit in its answer to a heartbeat. */
  onCancelled(unitId: string, reason: string): void
}

/** Most units one hello and one heartbeat may name (the coordinator's payload limits). */
const HELLO_UNITS = 16
const HEARTBEAT_UNITS = 8

/**
 * One lane's session with the coordinator: the socket (which reconnects by itself), `hello`, the
 * assignment feed resumed after each reconnect (client/feed.ts says why by hand), and heartbeats
 * that renew the leases of everything the lane holds. The API is open for the lane's other calls.
 */
export class CoordinatorSession {
  private readonly conn: Connection
  private online = false
  private feed: ResumableFeed | null = null
  private beating: NodeJS.Timeout | null = null
  /** As often as the coordinator asks: it spaces heartbeats out as more workers connect. */
  private beatSeconds = 5
  private id: string | null = null

  constructor(private readonly o: SessionOptions) {
    this.conn = connect(o.url, o.token, {
      // Said once per outage: the socket retries quietly, with growing pauses (client/connect.ts).
      onClose: () => { if (this.online) o.log('connection lost; reconnecting'); this.online = false; this.feed?.closed() },
      onOpen: () => { this.online = true; o.log(`connected to ${o.url}`); o.onOnline?.(); this.feed?.opened() },
      maxRetryDelayMs: o.reconnectMaxMs,
    })
  }

  get api(): Api {
    return this.conn.api
  }

  get httpBase(): string {
    return this.conn.httpBase
  }

  /** The id the coordinator gave this worker; known once `start` was called. */
  get workerId(): string {
    if (this.id === null) throw new Error('the session has not started: call start() with the hello reply first')
    return this.id
  }

  /** `worker.hello` with the units held now and the results still spooled. */
  async hello(): Promise<HelloReply> {
    const spooled = await this.o.lane.spooled()
    const holding = [...new Set([...this.o.lane.held(), ...spooled].map(l => l.unitId))].slice(0, HELLO_UNITS)
    const { name, hardware, version, agent } = this.o.identity
    return this.api.worker.hello.mutate({ name, hardware, fingerprints: this.o.lane.fingerprints, version, holding, agent })
  }

  /** Starts the feed and the heartbeats, as the worker the reply names. */
  start(reply: HelloReply): void {
    const workerId = reply.workerId
    this.id = workerId
    this.beatSeconds = reply.heartbeatSeconds ?? 5
    // After a reconnect: hello with the units held, then the feed again (client/feed.ts).
    this.feed = new ResumableFeed({
      hello: () => this.hello(), log: this.o.log, maxRetryMs: this.o.reconnectMaxMs,
      subscribe: () => this.api.worker.assignments.subscribe({ workerId, capacity: this.o.lane.capacity(), fingerprints: this.o.lane.fingerprints, sources: this.o.lane.sources?.() }, {
        onData: (e: AssignmentEvent) => this.o.onEvent(e),
        onError: err => this.o.log(`assignment feed error: ${err.message}`),
      }),
    })
    const tick = () => {
      this.beat()
      this.beating = setTimeout(tick, this.beatSeconds * 1000)
    }
    this.beating = setTimeout(tick, this.beatSeconds * 1000)
  }

  /** Renews the leases of what the lane holds and tells the coordinator its capacity. */
  beat(): void {
    // Not while the socket is down: the client would queue every beat and send them as one batch
    // on reconnect, past the coordinator's batch limit (the hello after a reconnect carries the units).
    if (!this.online || this.id === null) return
    const workerId = this.id
    const units = this.o.lane.held()
    const held = new Set(units.map(u => u.unitId))
    // Results still waiting in the spool keep their leases too: a unit whose lease ran out while its
    // report could not be delivered would go to another worker, and the report be refused.
    void this.o.lane.spooled().catch(() => []).then(waiting => {
      for (const w of waiting) if (!held.has(w.unitId)) units.push(w)
      return this.api.worker.heartbeat.mutate({ workerId, units: units.slice(0, HEARTBEAT_UNITS), capacity: this.o.lane.capacity() })
    }).then(r => {
      for (const id of r.cancelled) this.o.onCancelled(id, 'the coordinator cancelled this unit')
      if (r.heartbeatSeconds) this.beatSeconds = r.heartbeatSeconds
    }, () => {})
  }

  async close(): Promise<void> {
    if (this.beating) clearTimeout(this.beating)
    this.feed?.stop()
    await this.conn.close()
  }
}

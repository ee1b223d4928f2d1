import { createTRPCClient, createWSClient, httpLink, TRPCClientError, wsLink, type TRPCClient } from '@trpc/client'
import WebSocket from 'ws'
import type { AssignmentEvent, Hardware, ReportInput, WorkUnit } from '@autoresearch-grid/shared'
import type { AppRouter } from '../../src/api/router.ts'

/**
 * A worker that follows the protocol the way `worker join` does, with the training replaced by a
 * pause: one WebSocket for calls and the assignment feed (reconnecting by itself, re-subscribed by
 * tRPC), heartbeats for the units it holds, and every result kept until the coordinator answered
 * it (the spool), re-sent after failures. On a reconnect it says hello again with the units it
 * holds, so units pushed into a dying socket go back to the queue at once (DESIGN §8).
 */
export interface ScriptedWorkerOptions {
  url: string
  token: string
  name: string
  /** What the worker reports for a unit: null val_bpb is a crash; `source` replaces the unit's. */
  result: (unit: WorkUnit) => { valBpb: number | null; source?: Record<string, string>; description?: string }
  /** How long a unit "trains", ms. */
  trainMs?: () => number
  /** Stop taking units after this many. */
  maxUnits?: number
  /** Where reports go: the feed's WebSocket, or plain HTTP to `httpUrl`. */
  reportOver?: (attempt: number) => 'ws' | 'http'
  httpUrl?: string
  /** Give up on one report after this long (it stays undelivered); by default it is sent until answered or stopped. */
  deliverTimeoutMs?: number
  /** Reconnect back-off; the worker's own by default. */
  retryDelayMs?: (attempt: number) => number
}

export const CPU: Hardware = { gpus: [], cpu: { model: 'scripted cpu', cores: 2, arch: 'x86_64' }, platform: 'linux', torch: '1.13.1', hardwareClass: 'cpu-x86_64' }

type State = 'queued' | 'training' | 'delivering' | 'acked' | 'refused' | 'undelivered'

export interface Reply { unitId: string; experimentId: string; duplicate: boolean; decision: string; valBpb: number | null; at: number }

const sleep = (ms: number) => new Promise(r => setTimeout(r, ms))

export class ScriptedWorker {
  workerId = ''
  /** Every answer the coordinator gave to a report, duplicates included. */
  readonly replies: Reply[] = []
  readonly refusals: { unitId: string; message: string }[] = []
  readonly units: WorkUnit[] = []
  /** When each unit of `units` came (Date.now()). */
  readonly takenAt = new Map<string, number>()
  /** Times something came back from the coordinator (a unit or a report's answer): to measure resumption. */
  readonly heardAt: number[] = []
  attempts = 0
  failedAttempts = 0
  opens = 0
  private readonly tokens = new Map<string, string>()
  private readonly states = new Map<string, State>()
  private readonly queue: string[] = []
  private readonly byId = new Map<string, WorkUnit>()
  private wake: (() => void) | null = null
  private stopped = false
  private accepting = true
  /** Reports sent and not answered yet. */
  inFlight = 0
  private readonly wsClient: ReturnType<typeof createWSClient>
  readonly api: TRPCClient<AppRouter>
  private readonly http: TRPCClient<AppRouter> | null
  private sub: { unsubscribe(): void } | null = null
  private beat: NodeJS.Timeout | null = null
  private loop: Promise<void> | null = null

  constructor(readonly o: ScriptedWorkerOptions) {
    this.wsClient = createWSClient({
      url: o.url.replace(/^http/, 'ws') + '/trpc',
      WebSocket: WebSocket as never,
      connectionParams: () => ({ token: o.token }),
      retryDelayMs: o.retryDelayMs ?? (attempt => Math.min(30_000, 500 * 2 ** attempt) * (0.5 + Math.random() / 2)),
      onOpen: () => {
        this.opens++
        if (this.opens > 1 && this.workerId) this.hello().catch(() => {})
      },
    })
    this.api = createTRPCClient<AppRouter>({ links: [wsLink({ client: this.wsClient })] })
    this.http = o.httpUrl
      ? createTRPCClient<AppRouter>({ links: [httpLink({ url: o.httpUrl + '/trpc', headers: () => ({ authorization: `Bearer ${o.token}` }) })] })
      : null
  }

  /** Units it holds: waiting, training, or with a result not yet answered. */
  holding(): string[] {
    return [...this.states].filter(([, s]) => s === 'queued' || s === 'training' || s === 'delivering').map(([id]) => id)
  }

  private hello() {
    return this.api.worker.hello.mutate({ name: this.o.name, hardware: CPU, fingerprints: {}, version: 'scripted', holding: this.holding().slice(0, 16) })
  }

  async start(): Promise<void> {
    this.workerId = (await this.hello()).workerId
    this.sub = this.api.worker.assignments.subscribe({ workerId: this.workerId, capacity: 1 }, {
      onData: (e: AssignmentEvent) => { if (e.type === 'unit') this.take(e.unit) },
      onError: () => {},
    })
    this.beat = setInterval(() => {
      const units = this.holding().slice(0, 8).map(id => ({ unitId: id, leaseToken: this.tokens.get(id)!, progress: null }))
      if (units.length) this.api.worker.heartbeat.mutate({ workerId: this.workerId, units }).catch(() => {})
    }, 1000)
    this.loop = this.work()
  }

  private take(unit: WorkUnit): void {
    this.heardAt.push(Date.now())
    this.tokens.set(unit.id, unit.leaseToken)
    this.byId.set(unit.id, unit)
    const s = this.states.get(unit.id)
    // A unit pushed again comes with a new lease: the newest token is the one to report with.
    if (s === undefined || s === 'refused') {
      if (!this.accepting || (this.o.maxUnits !== undefined && this.units.length >= this.o.maxUnits)) return
      this.units.push(unit)
      this.takenAt.set(unit.id, Date.now())
      this.states.set(unit.id, 'queued')
      this.queue.push(unit.id)
      this.wake?.()
    }
  }

  private async work(): Promise<void> {
    while (!this.stopped) {
      const id = this.queue.shift()
      if (!id) {
        await new Promise<void>(r => { this.wake = r; setTimeout(r, 200) })
        this.wake = null
        continue
      }
      this.states.set(id, 'training')
      await sleep(this.o.trainMs?.() ?? 50)
      if (this.stopped) return
      this.states.set(id, 'delivering')
      await this.deliver(this.byId.get(id)!)
    }
  }

  private report(unit: WorkUnit): ReportInput {
    const r = this.o.result(unit)
    const budget = unit.budgetSeconds
    const metrics = r.valBpb === null ? null : { val_bpb: r.valBpb, training_seconds: budget, total_seconds: budget + 2, peak_vram_mb: 0, mfu_percent: 0,
      total_tokens_M: 0.1, num_steps: 10, num_params_M: 1, depth: 4 }
    return { unitId: unit.id, leaseToken: this.tokens.get(unit.id)!, status: metrics ? 'ok' : 'crash', source: r.source ?? unit.source,
      description: r.description ?? `${unit.kind} by ${this.o.name}`, diff: '', metrics, logTail: 'scripted', timings: { agentSeconds: 0, runSeconds: budget } }
  }

  /** Sends one result until the coordinator answers it (or refuses it, saying why). */
  private async deliver(unit: WorkUnit): Promise<void> {
    const report = this.report(unit)
    const deadline = Date.now() + (this.o.deliverTimeoutMs ?? Infinity)
    for (let attempt = 0; !this.stopped && Date.now() < deadline; attempt++) {
      const sent = { ...report, leaseToken: this.tokens.get(unit.id)! }
      const over = this.o.reportOver?.(attempt) ?? 'ws'
      const api = over === 'http' && this.http ? this.http : this.api
      this.attempts++
      this.inFlight++
      try {
        const reply = await withTimeout(api.worker.report.mutate({ workerId: this.workerId, report: sent }), 10_000).finally(() => { this.inFlight-- })
        this.heardAt.push(Date.now())
        this.replies.push({ unitId: unit.id, ...reply, valBpb: sent.metrics?.val_bpb ?? null, at: Date.now() })
        this.states.set(unit.id, 'acked')
        return
      } catch (err) {
        this.failedAttempts++
        const code = err instanceof TRPCClientError ? (err.data as { code?: string } | undefined)?.code : undefined
        if (code === 'BAD_REQUEST' || code === 'UNAUTHORIZED') {
          this.heardAt.push(Date.now())
          // Refused for a lease that was renewed meanwhile: try again with the newest token.
          if (this.tokens.get(unit.id) !== sent.leaseToken) continue
          this.refusals.push({ unitId: unit.id, message: (err as Error).message })
          this.states.set(unit.id, 'refused')
          return
        }
        await sleep(Math.min(2000, 100 * 2 ** Math.min(attempt, 5)))
      }
    }
    if (this.states.get(unit.id) === 'delivering') this.states.set(unit.id, 'undelivered')
  }

  /** Sends an answered report once more, as a spool would after a restart: it must come back a duplicate. */
  async resend(unitId: string): Promise<Reply> {
    const unit = this.byId.get(unitId)!
    const reply = await withTimeout(this.api.worker.report.mutate({ workerId: this.workerId, report: this.report(unit) }), 10_000)
    return { unitId, ...reply, valBpb: null, at: Date.now() }
  }

  /**
   * Takes no more units, and waits until every unit taken has an answer (or was given up on), or
   * `ms` passed; returns how many have none. No deadline by default: tap's timeout is the bound.
   */
  async drain(ms = Infinity): Promise<number> {
    this.accepting = false
    const end = Date.now() + ms
    while (Date.now() < end && this.holding().length) await sleep(100)
    return this.holding().length
  }

  /** Stops taking units; waits for the current one to finish; closes the socket. */
  async stop(): Promise<void> {
    this.stopped = true
    this.wake?.()
    this.sub?.unsubscribe()
    if (this.beat) clearInterval(this.beat)
    await this.loop
    await this.wsClient.close()
  }

  /** The first time after `t` that the coordinator answered this worker (Infinity: never). */
  heardAfter(t: number): number {
    const at = this.heardAt.find(x => x > t)
    return at === undefined ? Infinity : at - t
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout
  return Promise.race([p, new Promise<T>((_, reject) => { timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms) })])
    .finally(() => clearTimeout(timer))
}

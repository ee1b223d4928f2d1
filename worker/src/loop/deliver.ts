import { TRPCClientError } from '@trpc/client'
import type { Report, ReportReply } from '@autoresearch-grid/shared'
import { backoffMs } from '../client/backoff.ts'
import type { Spool, Spooled } from './spool.ts'

export { backoffMs }

/** Errors the coordinator answers with (bad request, unauthorized): retrying will not help. */
export function isFinal(err: unknown): boolean {
  const code = err instanceof TRPCClientError ? (err.data as { code?: string } | undefined)?.code : undefined
  return code === 'BAD_REQUEST' || code === 'UNAUTHORIZED' || code === 'FORBIDDEN' || code === 'NOT_FOUND'
}


export interface DelivererOptions {
  spool: Spool
  /** Sends one result; must give up when `signal` aborts (the attempt timed out). */
  send(item: Spooled, signal: AbortSignal): Promise<ReportReply>
  /** How long one attempt may take; a socket that is down queues calls rather than failing them. */
  attemptMs?: number
  log(line: string): void
  baseMs?: number
  capMs?: number
}

/**
 * Sends spooled results in the background, oldest first, one at a time, so the GPU lane never
 * waits on the coordinator. A result leaves the spool only once the coordinator answered (a
 * decision, or a refusal that retrying cannot change); a lost connection means waiting with
 * growing pauses, cut short by `wake()` when the connection comes back. The coordinator's reports
 * are idempotent, so a result sent twice (answer lost on the way back) is recorded once.
 */
export class Deliverer {
  private timer: NodeJS.Timeout | null = null
  private resume: (() => void) | null = null
  private running: Promise<void> | null = null
  private pending = false
  private stopped = false
  private readonly halt = new AbortController()
  private attempt = 0

  constructor(private readonly o: DelivererOptions) {}

  /**
   * Spools a new result and makes sure it is on its way. A disk that refuses it (full, say) does
   * not lose it: the spool keeps it in memory, and the worker is told what to do.
   */
  async push(workerId: string, report: Report): Promise<void> {
    const kept = await this.o.spool.put({ workerId, report })
    if (!kept.durable) {
      this.o.log(`${report.unitId}: could not save the result in ${this.o.spool.dir}: ${kept.problem}. ` +
        'It is kept in memory and sent when the coordinator answers, but it is lost if the worker stops first.')
    }
    this.kick()
  }

  /** Try again now (the connection is back). */
  wake(): void {
    this.attempt = 0
    if (this.resume) this.resume()
    else this.kick()
  }

  kick(): void {
    if (this.stopped) return
    this.pending = true
    if (!this.running) this.running = this.loop()
  }

  /** Drains until no kick arrived during the last pass. */
  private async loop(): Promise<void> {
    try {
      while (this.pending && !this.stopped) {
        this.pending = false
        await this.drain()
      }
    } finally {
      this.running = null
    }
  }

  /** Resolves when the spool is empty or delivery is stopped. */
  async idle(): Promise<void> {
    while (this.running) await this.running
  }

  /** Stops at once: an attempt in flight is abandoned (its result stays spooled). */
  async stop(): Promise<void> {
    this.stopped = true
    this.halt.abort()
    this.resume?.()
    await this.running
  }

  private async drain(): Promise<void> {
    for (;;) {
      if (this.stopped) return
      const items = await this.o.spool.list()
      if (items.length === 0) return
      for (const item of items) {
        if (this.stopped) return
        try {
          const attemptMs = this.o.attemptMs ?? 30_000
          const timeout = AbortSignal.timeout(attemptMs)
          const signal = AbortSignal.any([timeout, this.halt.signal])
          // Raced as well as passed on: an attempt ends on time even if the client ignored the signal.
          const r = await Promise.race([
            this.o.send(item, signal),
            new Promise<never>((_, reject) => signal.addEventListener('abort', () => reject(signal.reason), { once: true })),
          ]).catch(err => {
            throw timeout.aborted ? new Error(`no answer within ${attemptMs / 1000}s: the coordinator is down or unreachable`) : err
          })
          await this.o.spool.remove(item.report.unitId)
          this.attempt = 0
          this.o.log(`${item.report.unitId}: ${r.decision}${r.duplicate ? ' (already recorded)' : ''}`)
        } catch (err) {
          if (this.stopped) return
          if (isFinal(err)) {
            await this.o.spool.remove(item.report.unitId)
            this.o.log(`${item.report.unitId}: the coordinator did not take this result: ${(err as Error).message}`)
            continue
          }
          const pause = backoffMs(this.attempt++, Math.random, this.o.baseMs, this.o.capMs)
          this.o.log(`${item.report.unitId}: could not deliver (${(err as Error).message}); kept in the spool, retrying in ${(pause / 1000).toFixed(1)}s`)
          await new Promise<void>(resolve => {
            this.resume = resolve
            this.timer = setTimeout(resolve, pause)
          })
          clearTimeout(this.timer!)
          this.resume = null
          break
        }
      }
    }
  }
}

import { backoffMs } from './backoff.ts'

/**
 * The assignment feed across reconnects. tRPC re-subscribes by itself when the socket comes back;
 * but a worker back from an outage must first say `hello` again with the units it holds, so the
 * coordinator keeps those leases and re-queues at once any unit it leased to the worker that never
 * arrived (sent into a connection already dead). Left to tRPC, the new feed would race that hello:
 * a unit leased on it before the hello landed is not in `holding`, and the hello would take it
 * back from under the worker. So the feed is dropped when the socket closes and started again by
 * hand, after the hello.
 */
export interface FeedOptions {
  /** Starts the feed; returns how to stop it (tRPC's `subscribe(...).unsubscribe`). */
  subscribe(): { unsubscribe(): void }
  /** `worker.hello` with the units held now. */
  hello(): Promise<unknown>
  log(line: string): void
  /** Longest pause between hello attempts (default 30 s). */
  maxRetryMs?: number
}

export class ResumableFeed {
  private sub: { unsubscribe(): void } | null
  private down = false
  private stopped = false
  /** The hello in flight for the current reconnect, so two opens do not start two feeds. */
  private resuming: Promise<void> | null = null

  constructor(private readonly o: FeedOptions) {
    this.sub = o.subscribe()
  }

  /** The socket closed: drop the feed rather than let tRPC restart it before the hello. */
  closed(): void {
    if (this.stopped || this.down) return
    this.down = true
    this.sub?.unsubscribe()
    this.sub = null
  }

  /**
   * The socket is open again: hello first, then the feed. A hello that fails (the socket dropped
   * again, the coordinator restarting) is retried with growing pauses until it is answered.
   */
  opened(): void {
    if (this.stopped || !this.down || this.resuming) return
    this.resuming = (async () => {
      for (let attempt = 0; !this.stopped; attempt++) {
        try {
          await this.o.hello()
          break
        } catch (err) {
          this.o.log(`hello after reconnecting failed (${(err as Error).message}); trying again`)
          await new Promise(resolve => setTimeout(resolve, backoffMs(attempt, Math.random, 500, this.o.maxRetryMs ?? 30_000)))
        }
      }
      this.resuming = null
      if (this.stopped) return
      this.down = false
      this.sub = this.o.subscribe()
    })()
  }

  stop(): void {
    this.stopped = true
    this.sub?.unsubscribe()
    this.sub = null
  }
}

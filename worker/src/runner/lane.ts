/**
 * One GPU's turn, handed to one run at a time: a run holds it from the moment it gets its data
 * (the worker's clock starts) until its evaluation is done. Start-up is outside the turn, so the
 * next run starts up — imports, CUDA, compiling its model — while this one trains, and begins
 * training the moment the turn is passed on (docs/PERFORMANCE.md, "GPU duty cycle").
 *
 * Turns go in the order the runs took their tickets (when they were launched), not the order they
 * finished starting up: `worker solo` records its runs in order (the baseline first), and a run
 * whose start-up is quick does not jump one that compiles.
 */
export class GpuLane {
  private readonly queue: Ticket[] = []
  private holder: Ticket | null = null

  /** A place in line, taken when a run is launched. */
  ticket(): Ticket {
    const ticket = new Ticket(this)
    this.queue.push(ticket)
    return ticket
  }

  /** Takes a ticket and waits for its turn at once (a run with nothing to start up first). */
  acquire(signal?: AbortSignal): Promise<() => void> {
    return this.ticket().acquire(signal)
  }

  get busy(): boolean {
    return this.holder !== null
  }

  /** @internal Wakes the first ticket in line if the GPU is free. */
  advance(): void {
    if (this.holder) return
    const next = this.queue[0]
    if (next?.waiting) {
      this.queue.shift()
      this.holder = next
      next.waiting()
    }
  }

  /** @internal A ticket leaves: passes the turn on, or gives up its place in line. */
  leave(ticket: Ticket): void {
    if (this.holder === ticket) this.holder = null
    const i = this.queue.indexOf(ticket)
    if (i >= 0) this.queue.splice(i, 1)
    this.advance()
  }

  private readonly seats = new Set<number>()

  /**
   * A seat for one run from start-up to the end of its evaluation: seat 0 or 1, so two runs that
   * overlap (one training, the next starting up) use two run folders. Free it when the run ends.
   */
  seat(): { index: number; free(): void } {
    let index = 0
    while (this.seats.has(index)) index++
    this.seats.add(index)
    return { index, free: () => { this.seats.delete(index) } }
  }
}

export class Ticket {
  /** @internal Set while the run waits for its turn. */
  waiting: (() => void) | null = null
  private left = false

  constructor(private readonly lane: GpuLane) {}

  /** Resolves with the function that passes the turn on, once it is this ticket's. */
  async acquire(signal?: AbortSignal): Promise<() => void> {
    await new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        this.waiting = null
        this.leave()
        reject(signal!.reason instanceof Error ? signal!.reason : new Error('aborted'))
      }
      this.waiting = () => {
        this.waiting = null
        signal?.removeEventListener('abort', onAbort)
        resolve()
      }
      if (signal?.aborted) return onAbort()
      signal?.addEventListener('abort', onAbort, { once: true })
      this.lane.advance()
    })
    return () => this.leave()
  }

  /** Passes the turn on, or gives up the place in line; once. */
  leave(): void {
    if (this.left) return
    this.left = true
    this.lane.leave(this)
  }
}

/**
 * One GPU's turn, handed to one run at a time: a run holds it from the moment it gets its data
 * (the worker's clock starts) until its evaluation is done. Start-up is outside the turn, so the
 * next run starts up — imports, CUDA, compiling its model — while the GPU does other work, and
 * begins training the moment the turn is passed on (docs/PERFORMANCE.md, "GPU duty cycle").
 *
 * What a run's start-up may overlap is its ticket's `overlap` (the lane's by default):
 *   - 'training': it starts at launch, beside a run that trains. For code the worker vouches for:
 *     all of `worker solo`'s, and in `worker join` its own researcher's edits of the merged best
 *     (loop/start-up-overlap.ts says which units, and why);
 *   - 'evaluation' (`worker join`'s default, where the next unit may be a stranger's code): it
 *     starts only once every earlier run has finished training, so it overlaps evaluations and never
 *     a timed run. A stranger's untimed start-up could otherwise keep the GPU busy on purpose to
 *     slow the run being measured beside it (a parent's baseline, a rival's verification).
 *
 * A lane whose default is 'evaluation' is shared with strangers' code, and guards the runs it
 * measures against their neighbours, whoever those are:
 *   - an evaluation's number cannot be bent by a neighbour's load (only slowed), but it can fail
 *     when a neighbour takes the GPU's memory: then the neighbours are evicted (`evictGuests`) and
 *     the evaluation is redone with the GPU to itself; an evicted run starts again afterwards;
 *   - a run whose training failed while another run's process ran beside it (`Ticket.crowded`: a
 *     'training' start-up) may have failed for want of memory too: runner/measure.ts evicts the
 *     neighbours and trains it again alone, so a rival's verification is never failed by the
 *     worker's own start-up.
 * A `worker solo` lane ('training' by default) evicts nothing: every run in it is the worker's own.
 *
 * Turns go in the order the runs took their tickets (when they were launched), not the order they
 * finished starting up: `worker solo` records its runs in order (the baseline first), and a run
 * whose start-up is quick does not jump one that compiles.
 */
export type Overlap = 'training' | 'evaluation'

/**
 * A card that holds a training run and the next run's start-up (docs/PERFORMANCE.md, "Worker: GPU duty
 * cycle"). At the seed's DEVICE_BATCH of 128, one run held 49-53 GB and a training plus the next
 * one's warm-up peaked at 114 GB on the H200, so an 80 GB card overlapped evaluations only (62 % on
 * an H100). At 64 (session 22, an H100): one run 25.5 GB at 1.8 % fewer tokens/s, so two fit an
 * 80 GB card (81,559 MiB) with room for an edit that deepens the model; a 48 GB card does not.
 */
export const ROOM_FOR_TWO_RUNS_MB = 64_000

/**
 * What a run whose trainer reported `peakMb` (peak_vram_mb: torch's peak of allocated memory) holds
 * on the card: the allocator's reserve and the CUDA context on top. Measured on an H100 (session 22,
 * docs/runs/device-batch-2026-12-05-h100): a peak of 23,137 MiB held 25,517 on the card, 45,469 held
 * 50,097 (nvidia-smi): 1.1 times the peak and a GiB covers both.
 */
export const cardFootprintMb = (peakMb: number): number => Math.ceil(peakMb * 1.1) + 1024

/**
 * Whether a card of `cardMb` holds a training run and the next run's start-up: by the fixed line
 * until a run has been measured, then by what the last run of the worker's own code held at its peak
 * (the next one is an edit of the same best): an agent that grows the model past what two runs can
 * hold turns the overlap off, and a small model turns it on for a card under the line.
 */
export function roomForTwoRuns(cardMb: number, lastPeakMb: number | null): boolean {
  if (lastPeakMb === null || !Number.isFinite(lastPeakMb) || lastPeakMb <= 0) return cardMb >= ROOM_FOR_TWO_RUNS_MB
  return cardMb >= 2 * cardFootprintMb(lastPeakMb)
}

export class GpuLane {
  /** Tickets waiting for their turn, in launch order. */
  private readonly queue: Ticket[] = []
  /** Every ticket not yet left, in launch order (the holder included). */
  private readonly line: Ticket[] = []
  private holder: Ticket | null = null
  /** A run that evicted its neighbours: nothing else starts until it leaves. */
  private exclusive: Ticket | null = null
  private readonly startWaiters = new Set<() => void>()

  /** `overlap`: what a ticket's start-up may overlap unless it says otherwise (see the header). */
  constructor(readonly overlap: Overlap = 'training') {}

  /** Whether the lane is shared with strangers' code, and evicts neighbours to redo a run alone (see the header). */
  get evicts(): boolean {
    return this.overlap === 'evaluation'
  }

  /** A place in line, taken when a run is launched; `overlap`: what its start-up may overlap (the lane's by default). */
  ticket(overlap: Overlap = this.overlap): Ticket {
    const ticket = new Ticket(this, overlap)
    this.queue.push(ticket)
    this.line.push(ticket)
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
      if (this.line.some(t => t !== next && t.running)) next.crowded = true
      next.waiting()
    }
  }

  /** @internal Whether `ticket`'s process may start now (see `overlap`); `alone`: first in line. */
  mayStart(ticket: Ticket, alone = false): boolean {
    if (this.exclusive && this.exclusive !== ticket) return false
    if (alone) return this.line[0] === ticket
    if (ticket.overlap === 'training') return true
    for (const earlier of this.line) {
      if (earlier === ticket) return true
      if (!earlier.trained) return false
    }
    return true
  }

  /** @internal Waits until `mayStart(ticket)`. */
  async waitToStart(ticket: Ticket, signal?: AbortSignal, alone = false): Promise<void> {
    while (!this.mayStart(ticket, alone)) {
      signal?.throwIfAborted()
      await new Promise<void>(resolve => {
        const wake = () => {
          this.startWaiters.delete(wake)
          signal?.removeEventListener('abort', wake)
          resolve()
        }
        this.startWaiters.add(wake)
        signal?.addEventListener('abort', wake, { once: true })
      })
    }
  }

  /**
   * @internal `ticket`'s process starts: a run that holds the turn and still trains has it beside its
   * training, and runs still starting up (or `ticket` itself, if another run's process runs) share the
   * GPU with another start-up.
   */
  started(ticket: Ticket): void {
    if (this.holder && this.holder !== ticket && !this.holder.trained) this.holder.crowded = true
    for (const other of this.line) {
      if (other === ticket || !other.running) continue
      ticket.startupCrowded = true
      if (other !== this.holder && !other.trained) other.startupCrowded = true
    }
  }

  /** @internal Something changed that may let a waiting run start. */
  wake(): void {
    for (const wake of [...this.startWaiters]) wake()
  }

  /**
   * The runs launched after `host` whose processes are running (start-up beside its training or
   * evaluation) are stopped, and nothing else starts until `host` leaves. Resolves when their
   * processes are gone.
   */
  async evictGuests(host: Ticket): Promise<number> {
    // In a lane of the worker's own code alone (`worker solo`), none is a guest.
    if (!this.evicts) return 0
    this.exclusive = host
    const guests = this.line.slice(this.line.indexOf(host) + 1).filter(t => t.running)
    for (const guest of guests) guest.evict()
    await Promise.all(guests.map(g => g.stopped))
    return guests.length
  }

  /** @internal A ticket leaves: passes the turn on, or gives up its place in line. */
  leave(ticket: Ticket): void {
    if (this.holder === ticket) this.holder = null
    for (const list of [this.queue, this.line]) {
      const i = list.indexOf(ticket)
      if (i >= 0) list.splice(i, 1)
    }
    if (this.exclusive === ticket) this.exclusive = null
    this.advance()
    this.wake()
  }

  private readonly seats = new Set<number>()

  /**
   * A seat for one run from start-up to the end of its evaluation: seat 0 or 1, so two runs that
   * overlap (one training or evaluating, the next starting up) use two run folders. Free it when
   * the run ends.
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
  /** The run's training is over (or it never trains): a later run may start beside it. */
  trained = false
  /** The run's process is running. */
  running = false
  /** Another run's process ran while this one held the turn before it had trained (a 'training' start-up beside it). */
  crowded = false
  /**
   * Another run's process ran while this one started up (before its turn): a start-up that fails
   * then may have failed for want of the GPU's memory, and starts again alone (runner/measure.ts).
   */
  startupCrowded = false
  private left = false
  private readonly eviction = new AbortController()
  private markStopped: () => void = () => {}
  /** Resolves when the run's process has stopped (or never started). */
  readonly stopped = new Promise<void>(resolve => { this.markStopped = resolve })

  /** `overlap`: what this run's start-up may overlap (lane.ts header). */
  constructor(private readonly lane: GpuLane, readonly overlap: Overlap) {}

  /** Aborted when the lane evicts this run (`GpuLane.evictGuests`): stop its process, start again. */
  get evicted(): AbortSignal {
    return this.eviction.signal
  }

  /** Waits until the run's process may start (its `overlap`), then counts it as running. */
  async start(signal?: AbortSignal, alone = false): Promise<void> {
    await this.lane.waitToStart(this, signal, alone)
    this.running = true
    this.lane.started(this)
  }

  /**
   * Whether a run that started now would start beside another run's turn (its training or its
   * evaluation) in a lane that evicts: it may be evicted, and starts again alone if it is.
   */
  get besideAnother(): boolean {
    return this.lane.evicts && this.lane.busy
  }

  /** The run's process has ended. */
  processEnded(): void {
    this.running = false
    this.markStopped()
  }

  /** Training is over: a run with 'evaluation' overlap may start up now. */
  trainingEnded(): void {
    this.trained = true
    this.lane.wake()
  }

  /** @internal */
  evict(): void {
    this.eviction.abort(new Error('evicted: the run before it needed the GPU to itself to redo its evaluation'))
  }

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
    this.trained = true
    this.processEnded()
    this.lane.leave(this)
  }
}

/**
 * The agent's work and the GPU's, overlapped: candidates are prepared (several at once, each in its
 * own workspace) while the GPU trains one at a time. `depth` is how many units may be in hand at
 * once, fetched and not yet trained: 1 is the simple loop (prepare, train, prepare, …), 2 keeps a
 * spare that the agent prepares while the GPU trains, more lets several slow agent proposals run
 * side by side so that one is ready whenever the GPU frees up (loop/depth.ts chooses it).
 *
 * The trainer takes candidates in the order they become ready, so one slow proposal does not hold
 * up a faster one; `order: 'arrival'` trains them in the order the units came instead, for loops
 * whose units depend on that order (solo: the baseline first).
 */
export interface PipelineOptions<U, P> {
  /** The next unit to work on; null ends the pipeline. Called only while there is room in hand. */
  next(): Promise<U | null>
  /** The agent's phase. */
  prepare(unit: U): Promise<P>
  /** The GPU's phase. */
  train(prepared: P): Promise<void>
  /** What to do when one unit's phase fails; the pipeline carries on with the next one. */
  onError(unit: U, err: unknown): void
  /** Most units in hand at once (at least 1); a function is read again whenever there may be room. */
  depth: number | (() => number)
  /** Receives a function to call when `depth()` may have grown while nothing else happened. */
  onDepthChange?(recheck: () => void): void
  order?: 'ready' | 'arrival'
  /**
   * Units in the GPU phase at once (default 1). 2 lets the next unit's trainer start up — imports,
   * CUDA, compiling its model, all off the worker's clock — while the current one trains; the GPU
   * itself is still taken in turns (runner/lane.ts).
   */
  gpuSlots?: number
  signal?: AbortSignal
}

interface InHand<U, P> {
  unit: U
  prepared: P | null
  /** When it became ready, in sequence; 0 while being prepared. */
  ready: number
}

export async function runPipeline<U, P>(o: PipelineOptions<U, P>): Promise<void> {
  await new Pipeline(o).run()
}

class Pipeline<U, P> {
  private readonly depth: () => number
  /** Fetched and not yet training, in arrival order. */
  private readonly inHand: InHand<U, P>[] = []
  private fetching = 0
  /** Units in the GPU phase (at most `gpuSlots`). */
  private training = 0
  private readonly gpuSlots: number
  private ended = false
  /** An error that escaped a phase (a bug, or onError throwing): it stops the pipeline. */
  private readonly failures: unknown[] = []
  private readySeq = 0
  private readonly tasks = new Set<Promise<void>>()
  private wake: (() => void) | null = null

  constructor(private readonly o: PipelineOptions<U, P>) {
    this.depth = typeof o.depth === 'number' ? () => o.depth as number : o.depth
    this.gpuSlots = Math.max(1, o.gpuSlots ?? 1)
    o.onDepthChange?.(() => this.changed())
  }

  async run(): Promise<void> {
    try {
      for (;;) {
        if (this.failures.length) throw this.failures[0]
        const stopping = this.o.signal?.aborted ?? false
        while (!stopping && !this.ended && this.fetching + this.inHand.length + this.training < Math.max(1, this.depth())) {
          this.fetching++
          this.spawn(() => this.fetchAndPrepare())
        }
        const next = this.training >= this.gpuSlots || stopping ? null : this.pick()
        if (next) {
          this.inHand.splice(this.inHand.indexOf(next), 1)
          this.training++
          this.spawn(() => this.train(next))
          continue
        }
        if (this.training === 0 && (stopping || (this.ended && this.fetching === 0 && this.inHand.length === 0))) break
        await new Promise<void>(resolve => { this.wake = resolve })
      }
    } finally {
      // Units still being prepared when the pipeline stops are not trained; wait for their agents so
      // nothing keeps running after the loop returns (`next` answers null once the signal aborted).
      // After a failure, return at once: a `next` waiting for work would keep us here.
      while (this.tasks.size && !this.failures.length) await Promise.allSettled([...this.tasks])
    }
    if (this.failures.length) throw this.failures[0]
  }

  private changed(): void {
    const w = this.wake
    this.wake = null
    w?.()
  }

  /** Runs a phase in the background. */
  private spawn(work: () => Promise<void>): void {
    const task = work().catch(err => { this.failures.push(err) }).finally(() => {
      this.tasks.delete(task)
      this.changed()
    })
    this.tasks.add(task)
  }

  private async fetchAndPrepare(): Promise<void> {
    let unit: U | null
    try {
      unit = await this.o.next()
    } finally {
      this.fetching--
    }
    if (unit === null) {
      this.ended = true
      return
    }
    const entry: InHand<U, P> = { unit, prepared: null, ready: 0 }
    this.inHand.push(entry)
    try {
      entry.prepared = await this.o.prepare(unit)
      entry.ready = ++this.readySeq
    } catch (err) {
      this.inHand.splice(this.inHand.indexOf(entry), 1)
      this.o.onError(unit, err)
    }
  }

  private async train(entry: InHand<U, P>): Promise<void> {
    try {
      await this.o.train(entry.prepared as P)
    } catch (err) {
      this.o.onError(entry.unit, err)
    } finally {
      this.training--
    }
  }

  private pick(): InHand<U, P> | null {
    if (this.o.order === 'arrival') return this.inHand[0]?.ready ? this.inHand[0] : null
    let first: InHand<U, P> | null = null
    for (const e of this.inHand) if (e.ready && (!first || e.ready < first.ready)) first = e
    return first
  }
}

/**
 * One GPU's turn, handed to one run at a time: a run holds it from the moment it gets its data
 * (the worker's clock starts) until its evaluation is done. Start-up is outside the turn, so the
 * next run starts up — imports, CUDA, compiling its model — while this one trains, and begins
 * training the moment the turn is passed on (docs/PERFORMANCE.md, "GPU duty cycle").
 */
export class GpuLane {
  private held = false
  private readonly waiting: Array<() => void> = []

  /** Resolves with the function that passes the turn on, once it is this caller's. */
  async acquire(signal?: AbortSignal): Promise<() => void> {
    if (this.held) {
      await new Promise<void>((resolve, reject) => {
        const wake = () => {
          signal?.removeEventListener('abort', onAbort)
          resolve()
        }
        const onAbort = () => {
          this.waiting.splice(this.waiting.indexOf(wake), 1)
          reject(signal!.reason instanceof Error ? signal!.reason : new Error('aborted'))
        }
        signal?.addEventListener('abort', onAbort, { once: true })
        this.waiting.push(wake)
      })
    }
    this.held = true
    let passed = false
    return () => {
      if (passed) return
      passed = true
      const next = this.waiting.shift()
      if (next) next()
      else this.held = false
    }
  }

  get busy(): boolean {
    return this.held
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

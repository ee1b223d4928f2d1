import { stateKey, type Ctx } from '../context.ts'

/**
 * Reports being ingested at once: at most this many; the rest wait their turn in arrival order.
 *
 * Why: a report does its heaviest synchronous work (hashing its source, writing its loose objects)
 * the moment it arrives, then waits several turns of the event loop (the diff from git's pipe, the
 * ref, the transaction, the disk sync) before it is answered. Unbounded, a burst of arrivals took
 * the loop from the reports already under way: at 10,000 workers offering 600 reports a second,
 * the profile of the measured window was 57 % new reports' objects and 1.5 % reports'
 * transactions, so ~30 were answered a second while hundreds were half done, and every half-done
 * one held its source, objects and pipe request in memory (docs/PERFORMANCE.md, "Sixth pass").
 * Waiting here costs the parsed report only; the work starts when one ahead of it ends. At the rate
 * a real grid sends (a few dozen a second) nothing waits.
 */
export const REPORTS_AT_ONCE = 16

/** A first-in, first-out limit on concurrent async jobs. */
export class Gate {
  private running = 0
  private readonly waiting: (() => void)[] = []
  private head = 0

  constructor(readonly limit: number) {}

  /** Jobs started and not yet ended, and jobs waiting to start. */
  get load(): { running: number; waiting: number } {
    return { running: this.running, waiting: this.waiting.length - this.head }
  }

  async run<T>(job: () => Promise<T>): Promise<T> {
    if (this.running < this.limit) this.running++
    // The ending job hands its place over (`next`): `running` stays as it was.
    else await new Promise<void>(resolve => this.waiting.push(resolve))
    try {
      return await job()
    } finally {
      this.next()
    }
  }

  private next(): void {
    if (this.head === this.waiting.length) {
      this.running--
      return
    }
    const go = this.waiting[this.head]
    this.waiting[this.head++] = undefined as never
    // Dropping the taken entries now and then keeps the array from growing without bound.
    if (this.head > 1024 && this.head * 2 > this.waiting.length) {
      this.waiting.splice(0, this.head)
      this.head = 0
    }
    go()
  }
}

const REPORT_GATE = stateKey('reports being ingested', () => new Gate(REPORTS_AT_ONCE))

/** The coordinator's gate for reports (see REPORTS_AT_ONCE). */
export function reportGate(ctx: Pick<Ctx, 'state'>): Gate {
  return ctx.state.of(REPORT_GATE)
}

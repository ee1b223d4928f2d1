import type { Progress, WorkUnit } from '@autoresearch-grid/shared'
import type { Lease } from '../client/session.ts'
import type { DutyCycle } from './duty-cycle.ts'

interface Held {
  unit: WorkUnit
  progress: Progress | null
  abort: AbortController
}

/**
 * The units in a `worker join` lane's hands, as the coordinator's feed sends them: queued, being
 * prepared, training or waiting to train. The experiment loop takes them in arrival order; the
 * coordinator can cancel one at any point; heartbeats and a hello after a reconnect name them all
 * so their leases are kept. Time with any unit in hand counts towards the duty cycle from the
 * moment it arrives.
 */
export class HeldUnits {
  private readonly held = new Map<string, Held>()
  private readonly queue: WorkUnit[] = []
  /** Units whose run waits for room on the disk (loop/lane.ts, `untilRoomOnDisk`). */
  private readonly parked = new Set<string>()
  /** Wakes every `next` waiting for the feed. */
  private waiting: (() => void)[] = []
  /** The most units held at once. */
  maxHeld = 0
  /** The budget of the latest unit: the depth gauge's guess at a run's length until one is measured. */
  budgetSeconds = 300

  constructor(private readonly duty: DutyCycle) {}

  /** A unit from the feed: new ones queue; one already held carries on under the lease it came with. */
  arrived(unit: WorkUnit): void {
    const mine = this.held.get(unit.id)
    if (!mine) {
      this.held.set(unit.id, { unit, progress: null, abort: new AbortController() })
      this.maxHeld = Math.max(this.maxHeld, this.held.size)
      this.budgetSeconds = unit.budgetSeconds
      this.duty.hold(1)
      this.queue.push(unit)
    } else if (mine.unit.leaseToken !== unit.leaseToken) {
      // Its lease ran out while this worker still had it, and the coordinator leased it back to
      // this worker: carry on under the new lease (the report names it).
      mine.unit.leaseToken = unit.leaseToken
    }
    for (const w of this.waiting.splice(0)) w()
  }

  /** The next queued unit, waiting for the feed; null once `signal` aborts. */
  async next(signal: AbortSignal): Promise<WorkUnit | null> {
    for (;;) {
      if (signal.aborted) return null
      const unit = this.queue.shift()
      if (unit) return unit
      await new Promise<void>(resolve => {
        const done = () => { signal.removeEventListener('abort', done); resolve() }
        this.waiting.push(done)
        signal.addEventListener('abort', done, { once: true })
      })
    }
  }

  cancel(unitId: string, reason: string): void {
    this.held.get(unitId)?.abort.abort(reason)
  }

  /** Aborts when the coordinator cancels the unit; undefined once it left this worker's hands. */
  cancelled(unitId: string): AbortSignal | undefined {
    return this.held.get(unitId)?.abort.signal
  }

  progress(unitId: string, p: Progress): void {
    const h = this.held.get(unitId)
    if (h) h.progress = p
  }

  leaseToken(unitId: string): string | undefined {
    return this.held.get(unitId)?.unit.leaseToken
  }

  has(unitId: string): boolean {
    return this.held.has(unitId)
  }

  /**
   * The leases heartbeats and a hello name, so the coordinator keeps them. While a run waits for
   * room on the disk, the units that wait with it are left out: the one waiting and those not yet
   * taken from the queue. Their leases run out as if this worker were gone, and another worker may
   * take them; one that nobody took is reclaimed by the next heartbeat that names it again, one that
   * was taken is cancelled here by it (units/presence.ts, `heartbeat`).
   */
  leases(): Lease[] {
    const waiting = this.parked.size > 0 ? new Set([...this.parked, ...this.queue.map(u => u.id)]) : null
    return [...this.held.values()].filter(h => !waiting?.has(h.unit.id)).map(h => ({ unitId: h.unit.id, leaseToken: h.unit.leaseToken, progress: h.progress }))
  }

  /** The unit's run waits for room on the disk (`waiting`), or goes on: see `leases`. */
  park(unitId: string, waiting: boolean): void {
    if (waiting && this.held.has(unitId)) this.parked.add(unitId)
    else this.parked.delete(unitId)
  }

  release(unitId: string): void {
    this.parked.delete(unitId)
    if (this.held.delete(unitId)) this.duty.hold(-1)
  }
}

import { setTimeout as sleep } from 'node:timers/promises'
import { isCandidate, type Report, type WorkUnit } from '@autoresearch-grid/shared'

/** The first pause after a candidate with nothing to train, doubled for each one after it on the same parent, up to MAX. */
export const IDLE_BACKOFF_FIRST_MS = 2000
export const IDLE_BACKOFF_MAX_MS = 5 * 60_000

/**
 * A researcher that has nothing left to try on a parent (the heuristic, once every mutation of it
 * was tried) proposes it unchanged, or code measured before; the worker reports that at once, gets
 * the next exploration of the same parent, and so on: in session 16 a worker with nothing to try
 * sent 952 such reports in minutes while nothing merged. So the agent's next exploration of a
 * parent that gave nothing to train waits first: 2 s, doubled each time, at most 5 minutes. A
 * trained candidate, or a unit of another parent (the best moved), ends the wait; baselines and
 * verifications never wait.
 */
export class IdleBackoff {
  private parent: string | null = null
  private streak = 0

  private readonly firstMs: number
  private readonly maxMs: number
  private readonly log: (line: string) => void

  constructor(o: { log?: (line: string) => void; firstMs?: number; maxMs?: number } = {}) {
    this.log = o.log ?? (() => {})
    this.firstMs = o.firstMs ?? IDLE_BACKOFF_FIRST_MS
    this.maxMs = o.maxMs ?? IDLE_BACKOFF_MAX_MS
  }

  /** A result as it is recorded. */
  note(unit: WorkUnit, report: Report): void {
    if (!isCandidate(unit.kind)) return
    const untrained = report.metrics === null && report.timings.runSeconds === 0 && report.status === 'ok'
    if (!untrained) {
      this.parent = null
      this.streak = 0
    } else if (unit.parentCommit === this.parent) this.streak++
    else {
      this.parent = unit.parentCommit
      this.streak = 1
    }
  }

  /** How long the agent should wait before working on `unit`. */
  delayMs(unit: WorkUnit): number {
    if (!isCandidate(unit.kind) || this.streak === 0 || unit.parentCommit !== this.parent) return 0
    return Math.min(this.maxMs, this.firstMs * 2 ** (this.streak - 1))
  }

  /** Waits `delayMs(unit)`; ends early (without throwing) when `signal` aborts. */
  async wait(unit: WorkUnit, signal: AbortSignal): Promise<void> {
    const ms = this.delayMs(unit)
    if (ms === 0) return
    this.log(`${unit.id}: nothing was left to train on ${unit.parentCommit.slice(0, 10)} the last ${this.streak} time(s); the researcher starts in ${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)}s`)
    await sleep(ms, undefined, { signal }).catch(() => {})
  }
}

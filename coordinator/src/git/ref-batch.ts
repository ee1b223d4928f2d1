/**
 * Ref moves that may wait a moment, gathered and written together: every `refs/experiments/<id>`
 * (units/report.ts, reuse.ts, merge.ts). Each was a loose ref written on the event loop (a lock
 * file created, written, renamed: ~0.4 ms of a report's CPU, docs/PERFORMANCE.md, "Seventh pass");
 * gathered over `windowMs`, they go to git's long-running `update-ref --stdin` as one transaction,
 * which costs the event loop one pipe write and one answer per batch, and does the file work in git.
 *
 * Why waiting is safe: nothing in the coordinator or the workers reads these refs (merges, rebases,
 * reviews and the dashboard take an experiment's commit from the database; the git HTTP route
 * serves only campaign branches, and objects by id, which are written before the transaction); they
 * are there for people and for git's reachability. A crash loses at most one window of them, and
 * `restoreExperimentRefs` (units/experiment-refs.ts) writes every missing one at start, from the
 * commits the database recorded. `take` hands over what is pending, for a close that must not wait.
 */
export class RefBatch {
  private pending = new Map<string, string>()
  private timer: NodeJS.Timeout | null = null
  /** The batch being written, if any: `flush` waits for it too. */
  private writing: Promise<void> = Promise.resolve()

  constructor(private readonly write: (updates: [string, string][]) => Promise<void>, private readonly windowMs: number,
    private readonly failed: (err: Error, updates: [string, string][]) => void | Promise<void>) {}

  /** Moves `ref` to `to` within `windowMs` (a later move of the same ref in the window wins). */
  add(ref: string, to: string): void {
    this.pending.set(ref, to)
    this.timer ??= setTimeout(() => void this.flush(), this.windowMs)
  }

  /** Writes what is pending now; resolves when every batch asked for so far is written (or failed). */
  flush(): Promise<void> {
    const updates = this.take()
    if (updates.length) {
      this.writing = this.writing.then(() => this.write(updates)).catch((err: Error) => this.failed(err, updates))
    }
    return this.writing
  }

  /** What is pending, now no longer: the caller writes it. */
  take(): [string, string][] {
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
    const updates = [...this.pending]
    this.pending.clear()
    return updates
  }
}

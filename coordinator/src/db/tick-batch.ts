import type { Db } from './open.ts'
import { step } from '../trace/steps.ts'

interface Job { run: () => unknown; resolve: (v: unknown) => void; reject: (e: unknown) => void }

/**
 * Runs small writes that arrive in the same turn of the event loop in one transaction: each
 * `add(fn)` waits until the current turn ends (setImmediate), then all of them run inside one
 * `BEGIN … COMMIT`, each in its own savepoint (better-sqlite3 makes a transaction opened inside
 * another one), so one that throws is rolled back alone and its caller gets the error while the
 * others commit. `fn` may open transactions of its own: they become savepoints too.
 *
 * Why: a transaction of its own per heartbeat wrote the pages it touched (the worker row, its
 * units) to the WAL on every commit; at 10,000 workers, 250 heartbeats a second each paid a
 * commit. Heartbeats arriving together now share one. `fn` must be synchronous.
 */
export class TickBatch {
  private jobs: Job[] = []
  private scheduled = false

  constructor(private readonly db: Pick<Db, 'transaction'>) {}

  add<T>(fn: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.jobs.push({ run: fn, resolve: resolve as (v: unknown) => void, reject })
      if (!this.scheduled) {
        this.scheduled = true
        setImmediate(() => this.flush())
      }
    })
  }

  private flush(): void {
    this.scheduled = false
    step('-', 'batch-start')
    const jobs = this.jobs
    this.jobs = []
    const results: ({ ok: true; value: unknown } | { ok: false; error: unknown })[] = []
    try {
      this.db.transaction(() => {
        for (const job of jobs) {
          try {
            // Inside a transaction, better-sqlite3 makes this a savepoint (its own, prepared once).
            results.push({ ok: true, value: this.db.transaction(() => job.run()) })
          } catch (error) {
            results.push({ ok: false, error })
          }
        }
      })
    } catch (error) {
      // The commit itself failed: nothing of the batch is stored.
      for (const job of jobs) job.reject(error)
      return
    }
    step('-', `batch-end ${jobs.length}`)
    jobs.forEach((job, i) => {
      const r = results[i]
      if (r.ok) job.resolve(r.value)
      else job.reject(r.error)
    })
  }
}

const batches = new WeakMap<object, TickBatch>()

/** The database's batch: everything batched in one turn of the event loop shares one commit. */
export function tickBatch(db: Db): TickBatch {
  let b = batches.get(db)
  if (!b) batches.set(db, (b = new TickBatch(db)))
  return b
}

/**
 * The time of every SQL statement this process runs, added up by the statement's text
 * (docs/PERFORMANCE.md, "Eighteenth pass"): better-sqlite3's statement methods (`get`, `all`,
 * `run`; the coordinator iterates none) are wrapped on their shared prototype, so every statement
 * of every connection is timed, the ones better-sqlite3 runs for a transaction (`BEGIN`, `COMMIT`,
 * savepoints) too. A measuring aid for the in-process benchmark (ops.ts `--sql-time`); the timing
 * itself costs a little per call.
 */
import type { Db } from '../../coordinator/src/db/open.ts'

interface Total { calls: number; ms: number }

export function timeStatements(db: Db['$client']): { reset: () => void; report: (n: number) => string[] } {
  const proto = Object.getPrototypeOf(db.prepare('select 1')) as Record<string, (...args: unknown[]) => unknown>
  let totals = new Map<string, Total>()
  for (const method of ['get', 'all', 'run']) {
    const original = proto[method]
    proto[method] = function (this: { source: string }, ...args: unknown[]) {
      const start = performance.now()
      try {
        return original.apply(this, args)
      } finally {
        // The columns a select names say little: its table and conditions are what tell it apart.
        const key = this.source.replace(/\s+/g, ' ').replace(/^select .*? from /i, 'select … from ').slice(0, 240)
        const t = totals.get(key) ?? { calls: 0, ms: 0 }
        t.calls++
        t.ms += performance.now() - start
        totals.set(key, t)
      }
    }
  }
  return {
    reset: () => { totals = new Map() },
    report: n => {
      const all = [...totals.entries()].sort((a, b) => b[1].ms - a[1].ms)
      const sum = all.reduce((s, [, t]) => s + t.ms, 0)
      return [`SQL statements: ${sum.toFixed(0)} ms in all; the ${Math.min(n, all.length)} that took longest (ms in all, calls, µs a call, the statement):`,
        ...all.slice(0, n).map(([key, t]) => `${t.ms.toFixed(0).padStart(7)} ${String(t.calls).padStart(8)} ${((t.ms / t.calls) * 1000).toFixed(0).padStart(6)}  ${key}`)]
    },
  }
}

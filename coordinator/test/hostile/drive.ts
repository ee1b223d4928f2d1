import type { ReportInput, WorkUnit } from '@autoresearch-grid/shared'
import { report } from '../helpers.ts'

/** A worker as the tests hold it: its API, id, and the feed's `next()` (helpers.ts, joinWorkers). */
export interface Driven {
  name: string
  workerId: string
  api: { worker: { report: { mutate(input: { workerId: string; report: ReportInput }): Promise<{ experimentId: string; decision: string }> } } }
  next(): Promise<WorkUnit>
}

/**
 * Plays units as they arrive, each worker's by `answer`, until `done()` says so (or `maxMs` passed:
 * no deadline by default; a test asserts on what happened, never on how long it took, and tap's
 * timeout ends a drive that never gets done). Each worker keeps
 * one `next()` waiting at a time, so no unit is lost between rounds. `answer` returning null leaves
 * the unit unreported (the worker keeps it).
 */
export async function drive(workers: Driven[], answer: (w: Driven, u: WorkUnit) => ReportInput | null, done: () => boolean, maxMs = Infinity): Promise<void> {
  const pending = new Map<Driven, Promise<[Driven, WorkUnit]>>()
  const end = Date.now() + maxMs
  while (!done() && Date.now() < end) {
    for (const w of workers) if (!pending.has(w)) pending.set(w, w.next().then(u => [w, u] as [Driven, WorkUnit]))
    const tick = new Promise<null>(r => setTimeout(() => r(null), 200))
    const got = await Promise.race([...pending.values(), tick])
    if (!got) continue
    const [w, u] = got
    pending.delete(w)
    const r = answer(w, u)
    if (r) await w.api.worker.report.mutate({ workerId: w.workerId, report: r }).catch(ignoreCancelled)
  }
}

/**
 * A verification whose candidate was closed while the worker held it is cancelled (units/judge.ts
 * closingReason), and its report refused: a real worker drops the unit when its feed says
 * `cancel`; a scripted one that reports it anyway is told so, and goes on with its next unit.
 */
export function ignoreCancelled(e: Error): null {
  if (/^work unit "[^"]+" was cancelled/.test(e.message)) return null
  throw e
}

let edits = 0
/** A fresh edit of the seed (a different MATRIX_LR each time), so every exploration is a new commit. */
export function freshEdit(source: string): string {
  edits++
  return source.replace(/MATRIX_LR = [0-9.]+/, `MATRIX_LR = 0.${1000 + edits}`)
}

export { report }

import { appendFileSync } from 'node:fs'

/**
 * Opt-in timestamps of the steps a report and the next unit go through on the coordinator, for the
 * load benchmark's tail (docs/PERFORMANCE.md, "Ninth pass"): with AUTORESEARCH_STEP_TRACE=<file>,
 * each `step(worker, name)` becomes a line `<epoch ms, 0.01 ms> <worker> <name>` in that file,
 * written in batches once a second (and at exit) so the trace does not put a write on every step.
 * Off (the default), a step costs one comparison. Epoch ms come from performance.timeOrigin, as the
 * bench's clients take theirs, so the two can be joined.
 */
const FILE = process.env.AUTORESEARCH_STEP_TRACE || null
const lines: string[] = []

export const tracing = FILE !== null

export function step(worker: string, name: string): void {
  if (FILE === null) return
  lines.push(`${(performance.timeOrigin + performance.now()).toFixed(2)} ${worker} ${name}`)
}

function flush(): void {
  if (FILE !== null && lines.length) appendFileSync(FILE, lines.splice(0).join('\n') + '\n')
}

if (FILE !== null) {
  setInterval(flush, 1000).unref()
  process.on('exit', flush)
}

import type { Progress } from '@autoresearch-grid/shared'
import { printable } from './printable.ts'

/**
 * What the worker shows its owner: permanent log lines, and per GPU lane the live state of the
 * run (step, % of budget, loss, ETA, what is being tried). On a terminal the live state is one
 * line redrawn in place under the log; anywhere else (a file, journald, a test) it becomes a plain
 * line at each quarter of the budget. Both print what they are given through `printable`: log lines
 * and titles carry text from campaign code and the coordinator (printable.ts).
 */
export interface ProgressSink {
  log(line: string): void
  /** A lane started a run; `title` is the hypothesis or the change being tried. */
  start(lane: string, run: { unitId: string; title: string; budgetSeconds: number }): void
  progress(lane: string, p: Progress): void
  /** The run ended (or the lane went idle). */
  stop(lane: string): void
}

interface LaneState {
  unitId: string
  title: string
  budgetSeconds: number
  progress: Progress | null
  /** Plain mode: the last quarter printed. */
  quarter: number
}

/** Pure: `1:05` for 65 seconds. */
export function clock(seconds: number): string {
  const s = Math.max(0, Math.round(seconds))
  const h = Math.floor(s / 3600)
  const m = Math.floor((s % 3600) / 60)
  const ss = String(s % 60).padStart(2, '0')
  return h ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`
}

/** Pure: the live line of one lane, e.g. `gpu0 [██████░░░░]  62% step 120 loss 3.4512 ETA 0:54 · MATRIX_LR 0.04 -> 0.06`. */
export function renderLane(lane: string, s: LaneState, width = 20): string {
  const pct = s.progress?.percent ?? 0
  const filled = Math.round((pct / 100) * width)
  const bar = `[${'█'.repeat(filled)}${'░'.repeat(width - filled)}]`
  const eta = s.progress?.remainingSeconds ?? (s.budgetSeconds * (100 - pct)) / 100
  const bits = [
    lane ? `${lane} ` : '',
    `${bar} ${pct.toFixed(0).padStart(3)}%`,
    s.progress ? ` step ${s.progress.step}` : ' starting',
    s.progress?.loss != null ? ` loss ${s.progress.loss.toFixed(4)}` : '',
    ` ETA ${clock(eta)}`,
    ` · ${printable(s.title)}`,
  ]
  return bits.join('')
}

/** A sink that prints plain lines through `write` (one call per line). */
export function plainProgress(write: (line: string) => void): ProgressSink {
  const lanes = new Map<string, LaneState>()
  const prefix = (lane: string) => (lane ? `[${lane}] ` : '')
  return {
    log: line => write(printable(line)),
    start: (lane, run) => {
      lanes.set(lane, { ...run, progress: null, quarter: -1 })
    },
    progress: (lane, p) => {
      const s = lanes.get(lane)
      if (!s) return
      s.progress = p
      const quarter = Math.floor(p.percent / 25)
      if (quarter > s.quarter) {
        s.quarter = quarter
        write(`${prefix(lane)}${s.unitId}: step ${p.step} ${p.percent.toFixed(0)}%${p.loss !== null ? ` loss ${p.loss.toFixed(4)}` : ''}${p.remainingSeconds !== null ? ` ETA ${clock(p.remainingSeconds)}` : ''}`)
      }
    },
    stop: lane => {
      lanes.delete(lane)
    },
  }
}

/** A sink that keeps one live line per lane at the bottom of a terminal. */
export function terminalProgress(stream: NodeJS.WriteStream): ProgressSink {
  const lanes = new Map<string, LaneState>()
  let drawn = 0
  let last = 0
  let timer: NodeJS.Timeout | null = null

  const clear = () => {
    if (drawn === 0) return
    // Up to the first live line, then clear to the end of the screen.
    stream.write(`\r${drawn > 1 ? `\x1b[${drawn - 1}A` : ''}\x1b[J`)
    drawn = 0
  }
  const draw = () => {
    clear()
    const width = Math.max(40, (stream.columns || 100) - 1)
    const lines = [...lanes].map(([lane, s]) => renderLane(lanes.size > 1 ? lane : '', s).slice(0, width))
    if (lines.length) stream.write(lines.join('\n'))
    drawn = lines.length
    last = Date.now()
  }
  const schedule = () => {
    if (timer) return
    const wait = Math.max(0, 100 - (Date.now() - last))
    timer = setTimeout(() => { timer = null; draw() }, wait)
    timer.unref()
  }
  return {
    log: line => {
      clear()
      stream.write(`${printable(line)}\n`)
      draw()
    },
    start: (lane, run) => {
      lanes.set(lane, { ...run, progress: null, quarter: -1 })
      schedule()
    },
    progress: (lane, p) => {
      const s = lanes.get(lane)
      if (!s) return
      s.progress = p
      schedule()
    },
    stop: lane => {
      lanes.delete(lane)
      draw()
    },
  }
}

/** The right sink for where the worker's output goes. */
export function progressFor(stream: NodeJS.WriteStream = process.stdout): ProgressSink {
  return stream.isTTY ? terminalProgress(stream) : plainProgress(line => stream.write(`${line}\n`))
}

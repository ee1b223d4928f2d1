/** CPU time and memory of a process, read from Linux's /proc (the benchmark measures the coordinator from outside). */
import { readdirSync, readFileSync } from 'node:fs'
import { execFileSync } from 'node:child_process'

const TICKS_PER_SECOND = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100

export interface ProcSample {
  /** Seconds of CPU the process used (user + system), and the processes it started (git) used. */
  cpuSeconds: number
  childCpuSeconds: number
  rssMb: number
  /** Peak resident set since the process started. */
  peakRssMb: number
  at: number
}

function stat(pid: number): { ppid: number; own: number; children: number } | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // Fields after the command name, which is in parentheses and may contain spaces.
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ')
    const [utime, stime, cutime, cstime] = [f[11], f[12], f[13], f[14]].map(Number)
    return { ppid: Number(f[1]), own: (utime + stime) / TICKS_PER_SECOND, children: (cutime + cstime) / TICKS_PER_SECOND }
  } catch {
    return null
  }
}

/** CPU seconds (user + system) of one thread of a process: `tid` = pid is its main thread, the event loop. */
export function threadCpuSeconds(pid: number, tid = pid): number {
  const text = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8')
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ')
  return (Number(f[11]) + Number(f[12])) / TICKS_PER_SECOND
}

/**
 * The process's own CPU time, and that of everything it started: its live descendants (the
 * coordinator's long-running git processes) and those it and they have reaped.
 */
export function sample(pid: number): ProcSample | null {
  const root = stat(pid)
  if (!root) return null
  let childCpuSeconds = root.children
  const parents = new Map<number, number>()
  for (const name of readdirSync('/proc')) {
    const p = Number(name)
    if (!Number.isInteger(p) || p === pid) continue
    const s = stat(p)
    if (s) parents.set(p, s.ppid)
  }
  for (const p of parents.keys()) {
    let up = parents.get(p)
    while (up !== undefined && up !== pid) up = parents.get(up)
    if (up !== pid) continue
    const s = stat(p)
    if (s) childCpuSeconds += s.own + s.children
  }
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8')
    const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0)
    return { cpuSeconds: root.own, childCpuSeconds, rssMb: kb('VmRSS') / 1024, peakRssMb: kb('VmHWM') / 1024, at: performance.now() }
  } catch {
    return null
  }
}

/** The soft limit on open files this process tree may raise itself to (the hard limit). */
export function openFilesHardLimit(): string {
  return execFileSync('sh', ['-c', 'ulimit -Hn']).toString().trim()
}

import { execa } from 'execa'

export interface Isolation {
  /** Prefix for the trainer's command line (the `wrap` of runTrainer); empty when none works. */
  wrap: string[]
  /** In words, for the log: `no network (unshare --net --map-root-user)` or why there is none. */
  how: string
  isolated: boolean
}

/**
 * Ways to start the trainer in a network namespace of its own (only a down loopback inside), best
 * first. `--map-root-user` needs unprivileged user namespaces; plain `--net` needs root.
 * `--kill-child` (util-linux 2.32+) makes unshare take train.py with it if unshare itself is killed;
 * the launcher (runner/launcher.ts) already kills the group when the worker dies, this covers a
 * kill aimed at unshare alone. Older unshares get the same isolation without it.
 */
export const CANDIDATES: readonly string[][] = [
  ['unshare', '--net', '--map-root-user', '--kill-child'],
  ['unshare', '--net', '--kill-child'],
  ['unshare', '--net', '--map-root-user'],
  ['unshare', '--net'],
]

let cached: Promise<Isolation> | null = null

/**
 * Finds the first wrapper that works on this machine by running `true` under it. Containers
 * without user namespaces (or with a seccomp profile that forbids unshare) get no isolation; the
 * trainer then runs as is, and the caller warns once.
 */
export function detectIsolation(options: { candidates?: readonly string[][]; fresh?: boolean } = {}): Promise<Isolation> {
  if (cached && !options.fresh && !options.candidates) return cached
  const probe = (async (): Promise<Isolation> => {
    const tried: string[] = []
    for (const wrap of options.candidates ?? CANDIDATES) {
      const r = await execa(wrap[0], [...wrap.slice(1), 'true'], { reject: false, stdin: 'ignore', timeout: 10_000 })
      if (r.exitCode === 0) return { wrap: [...wrap], how: `no network (${wrap.join(' ')})`, isolated: true }
      tried.push(`${wrap.join(' ')}: ${r.code === 'ENOENT' ? 'not installed' : String(r.stderr).trim().split('\n').pop() || `exit ${r.exitCode}`}`)
    }
    return { wrap: [], how: `WARNING: the trainer runs WITH network access: no way to isolate it here (${tried.join('; ')}). See worker/README.md, "Safety".`, isolated: false }
  })()
  if (!options.candidates) cached = probe
  return probe
}

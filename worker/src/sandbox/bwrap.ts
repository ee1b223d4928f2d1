/**
 * The sandbox every piece of campaign code runs in: bubblewrap (docs/SECURITY.md says why bwrap).
 * Pure: turns what the host looks like and what one run needs into bwrap's command line.
 *
 * Inside: the system, Python and its packages read-only at their own paths; an empty private HOME
 * and /tmp; exactly the mounts the run asks for (its run folder writable, its data read-only); the
 * GPU's device nodes; fresh user, PID, network, IPC, UTS and cgroup namespaces (no network at all,
 * and nothing outlives PID 1); no capabilities; the launcher's session, which has no terminal
 * (launcher.ts: no terminal injection), and its process group (below); the environment given here
 * and nothing else; a seccomp filter (seccomp.ts). Not inside: the worker's state, spool,
 * workspaces, tokens, the checkout, HOME, /etc beyond the loader's files, other units' folders.
 */

import { type SandboxLimits, withTaskLimit } from './limits.ts'
import type { SeccompProfile } from './seccomp.ts'

/**
 * Fixed paths inside the sandbox, so the code sees no host path in its environment or working
 * folder. (/proc/self/mountinfo still names the host folders the mounts come from: a user name, the
 * state folder's path. They are names, not access; docs/SECURITY.md lists it among the limits.)
 */
export const INSIDE = {
  run: '/sandbox/run',
  data: '/sandbox/data',
  cache: '/sandbox/cache',
  pycache: '/sandbox/pycache',
  home: '/sandbox/home',
  shm: '/sandbox/shm',
  harness: '/sandbox/harness',
} as const

/**
 * The size of each writable tmpfs inside (/tmp, /dev/shm, HOME), unless the layout says otherwise.
 * A tmpfs is memory that belongs to no process: the kernel's OOM killer, which picks a process by
 * its own memory, never picks the run that filled one (each took up to half the machine's RAM, the
 * kernel's default), and kills the worker or the volunteer's own programs instead. Honest runs keep
 * little there (their caches have folders of their own); a run that needs more fails, visibly.
 */
export const TMPFS_BYTES = 4 * 1024 ** 3

export interface HostLayout {
  /** The bwrap binary. */
  bwrap: string
  /** Top-level entries of / that may be symlinks into /usr (merged-usr) or real folders. */
  rootEntries: { path: string; symlink: string | null }[]
  /** Folders and files of the system mounted read-only at their own path (/usr, /sys, loader files). */
  system: string[]
  /** Python's prefixes, site-packages and library folders, read-only at their own path. */
  python: string[]
  /** Device nodes to pass through (the GPU's), at their own path. */
  devices: string[]
  /**
   * Kernel interfaces under the sandbox's /proc made read-only or hidden, as container runtimes do.
   * A worker that runs as root maps the sandbox's user to root outside: /proc/sys and its kin check
   * the user, not the namespace, so left writable they would let train.py set the host kernel's
   * core_pattern (and run code as root). Those of them this kernel has.
   */
  procReadOnly: string[]
  procHidden: string[]
  /**
   * The size of each writable tmpfs inside (/tmp, /dev/shm, HOME); TMPFS_BYTES by default. 0: no
   * bound, where bwrap cannot set one (before 0.7.0, or installed setuid: detect.ts tmpfsSizeProblem).
   */
  tmpfsBytes?: number
  /**
   * The seccomp programs (seccomp.ts) as files, by profile: bwrap reads the request's from a file
   * descriptor. Absent: no filter (an architecture seccomp.ts has no table for).
   */
  seccomp?: Record<SeccompProfile, string>
  /**
   * What one sandbox may hold (limits.ts): its command starts under the task limit; the launcher puts
   * each run in cgroups of its own where `cgroups` names any. Absent: the machine's bounds only.
   */
  limits?: SandboxLimits
  /** Run as this user inside (a user namespace maps it to the worker's own user). */
  uid: number
  gid: number
}

export interface Mount {
  host: string
  inside: string
  writable?: boolean
}

export interface SandboxRequest {
  mounts: readonly Mount[]
  /** The whole environment inside (bwrap clears the rest). */
  env: Record<string, string>
  cwd: string
  command: readonly string[]
  /** The seccomp profile (seccomp.ts): `run` unless said otherwise. */
  seccomp?: SeccompProfile
}

/** The descriptor the program file is opened on for bwrap (`--seccomp`), which closes it before the command runs. */
const SECCOMP_FD = 9

/**
 * bwrap's command line for one request: `[bwrap, ...flags, '--', ...command]`; with a seccomp
 * filter, started by /bin/sh, which opens the program's file on SECCOMP_FD and execs bwrap.
 */
export function bwrapCommand(host: HostLayout, req: SandboxRequest): string[] {
  // No --new-session: bwrap calls setsid() in the sandbox's PID 1 late in its set-up, and sets that
  // process's parent-death signal only after it forked the command. A kill of the launcher's group
  // in between (a worker stopped as a run starts) killed the outer bwrap and left PID 1 in a session
  // of its own, reparented to init with no death signal: the sandbox ran on for an hour
  // (docs/RELIABILITY.md, "Worker side: trainer orphans"). In the launcher's group, PID 1 dies with
  // the group, and the kernel ends the namespace with it. The launcher's session has no terminal.
  const args: string[] = [
    host.bwrap,
    '--unshare-all', '--unshare-user', '--die-with-parent', '--cap-drop', 'ALL',
    '--uid', String(host.uid), '--gid', String(host.gid), '--hostname', 'sandbox',
  ]
  for (const dir of host.system) args.push('--ro-bind', dir, dir)
  for (const e of host.rootEntries) {
    if (e.symlink !== null) args.push('--symlink', e.symlink, e.path)
    else args.push('--ro-bind', e.path, e.path)
  }
  for (const dir of host.python) args.push('--ro-bind', dir, dir)
  args.push('--proc', '/proc')
  for (const path of host.procReadOnly) args.push('--ro-bind', path, path)
  for (const path of host.procHidden) args.push('--ro-bind', '/dev/null', path)
  const size = host.tmpfsBytes === 0 ? [] : ['--size', String(host.tmpfsBytes ?? TMPFS_BYTES)]
  args.push('--dev', '/dev', ...size, '--tmpfs', '/dev/shm', ...size, '--tmpfs', '/tmp', '--tmpfs', '/sandbox', '--dir', INSIDE.home)
  for (const node of host.devices) args.push('--dev-bind', node, node)
  for (const m of req.mounts) args.push(m.writable ? '--bind' : '--ro-bind', m.host, m.inside)
  // The mount points above are made by bwrap inside the sandbox's tmpfs; then it is made read-only,
  // so the only writable places are the run's own mounts, HOME and /tmp.
  args.push('--remount-ro', '/sandbox')
  args.push(...size, '--tmpfs', INSIDE.home)
  const filter = host.seccomp?.[req.seccomp ?? 'run']
  if (filter) args.push('--seccomp', String(SECCOMP_FD))
  args.push('--clearenv')
  for (const [k, v] of Object.entries(req.env).sort(([a], [b]) => a.localeCompare(b))) args.push('--setenv', k, v)
  args.push('--chdir', req.cwd, '--', ...(host.limits ? withTaskLimit(host.limits, req.command) : req.command))
  return filter ? ['/bin/sh', '-c', `f=$1; shift; exec "$@" ${SECCOMP_FD}<"$f"`, 'sh', filter, ...args] : args
}

/**
 * The environment inside: what Python, torch and the GPU stack need (already filtered of secrets by
 * the caller), with HOME, TMPDIR and the caches pointed inside the sandbox.
 */
export function sandboxEnvironment(base: Record<string, string>, extra: Record<string, string>): Record<string, string> {
  const keep = Object.fromEntries(Object.entries(base).filter(([k]) => !/^(HOME|TMPDIR|TEMP|TMP|XDG_.*|USER|LOGNAME|PWD|OLDPWD)$/.test(k)))
  return {
    ...keep,
    HOME: INSIDE.home,
    TMPDIR: '/tmp',
    USER: 'sandbox',
    LOGNAME: 'sandbox',
    XDG_CACHE_HOME: `${INSIDE.home}/.cache`,
    ...extra,
  }
}

import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, statfsSync, writeFileSync } from 'node:fs'
import { cpus, totalmem } from 'node:os'
import { dirname, join, resolve } from 'node:path'

/**
 * What one sandbox may hold of the volunteer's machine (docs/SECURITY.md, "Limits on tasks and
 * memory"). A fork bomb or a memory hog in train.py used to be bounded by the machine alone.
 *
 * - Tasks (processes and threads): RLIMIT_NPROC, set inside the sandbox by a prelude of ours before
 *   the command runs (TASK_LIMIT_PY), soft and hard, so the code cannot raise it. The kernel counts
 *   it per user and user namespace, and exempts root: it binds a worker run as any other user.
 * - Tasks and memory, where this worker may make cgroups (a root worker on a cgroup v1 host, or a
 *   cgroup v2 one whose controllers are enabled for its children): each run in a cgroup of its own
 *   with pids.max and a memory limit, made and removed by the launcher (launcher.ts). A tmpfs page
 *   is charged to the cgroup of the run that wrote it.
 * - Tasks, where neither binds (a root worker with no pids cgroup: a container's root, the device
 *   machine of docs/PERFORMANCE.md): the launcher counts the tasks below it each second, in /proc,
 *   and kills the run's process group past the limit (`countTasks`). Later than the kernel by up to a
 *   second, so a bomb gets further first, but it stops.
 * - Everywhere: the run's oom_score_adj is 1000 (launcher.ts), so when memory runs out the kernel's
 *   OOM killer takes the run, not the volunteer's programs or the worker.
 * - Disk: the launcher stops a run when a filesystem it writes to (its writable mounts: the run
 *   folder, the compile cache) falls below a floor of free space, checked each second, and the run
 *   itself wrote at least half of what that filesystem lost since the run started (and at least
 *   DISK_SHARE_MIN_BYTES). Every run's launcher watches the same disk: a hostile run that fills it
 *   is stopped, and an honest one beside it goes on. The run's writes are counted by inode in its
 *   writable folders, against what they held when it started, and in files it deleted but holds
 *   open; folders it made unreadable count it as the writer. Below half the floor every run stops.
 *   The sandbox's own /tmp, HOME and /dev/shm are tmpfs of bounded size (bwrap.ts TMPFS_BYTES).
 */
export interface SandboxLimits {
  /** The trainer's interpreter, which runs the prelude inside. */
  python: string
  /** Tasks the sandbox's user may have (RLIMIT_NPROC), and a run's cgroup (pids.max). */
  tasks: number
  /** Bytes a run's cgroup may hold. */
  memoryBytes: number
  /** Where this worker makes each run's cgroups: one per controller hierarchy. Empty: none here. */
  cgroups: CgroupParent[]
  /** The launcher counts each run's tasks against `tasks` (neither RLIMIT_NPROC nor a pids cgroup binds here). */
  countTasks?: boolean
  /** The free bytes below which the launcher stops a run writing to that filesystem; absent: `diskFloor`'s rule. */
  diskFloorBytes?: number
}

/** A cgroup folder this worker may make children in, and which of the limits its children take. */
export interface CgroupParent {
  dir: string
  version: 1 | 2
  /** The controllers a child's files limit: ['pids'], ['memory'] (v1) or both (v2). */
  controllers: ('pids' | 'memory')[]
  /**
   * Memory with swap accounting (the kernel's, found on a child at start): v1 limits memory and swap
   * together too (memory.memsw.*), v2 allows no swap (memory.swap.max). Without it, memory alone.
   */
  swap?: boolean
}

/** The files a run's cgroup under `parent` is given before the run joins it: name to value. */
export function cgroupFiles(parent: CgroupParent, limits: Pick<SandboxLimits, 'tasks' | 'memoryBytes'>): Record<string, string> {
  const files: Record<string, string> = {}
  if (parent.controllers.includes('pids')) files['pids.max'] = String(limits.tasks)
  if (parent.controllers.includes('memory')) {
    // v1's limit is of memory alone: past it, a run is swapped out rather than stopped, unless
    // memory and swap together are limited too (written second: it may not be below the first).
    if (parent.version === 1) Object.assign(files, { 'memory.limit_in_bytes': String(limits.memoryBytes) }, parent.swap ? { 'memory.memsw.limit_in_bytes': String(limits.memoryBytes) } : {})
    else Object.assign(files, { 'memory.max': String(limits.memoryBytes) }, parent.swap ? { 'memory.swap.max': '0' } : {})
  }
  return files
}

/**
 * Honest runs stay far below: PyTorch's thread pools (one thread a core), the inductor's compile
 * workers, CUDA's own threads, a few hundred on a big box. A bomb stops here, the machine with room.
 */
export function taskLimit(cores = cpus().length): number {
  return Math.max(4096, 32 * cores)
}

/** All the memory but a tenth of the machine (at least 2 GiB), kept for the volunteer and the worker. */
export function memoryLimit(total = totalmem()): number {
  const GiB = 1024 ** 3
  return Math.max(GiB, total - Math.max(2 * GiB, Math.floor(total / 10)))
}

/**
 * Sets the task limit, then becomes the command: run with `-I -S`, so nothing of the run folder or
 * the environment is imported first. Ours, not the agent's.
 */
export const TASK_LIMIT_PY = `
import os, resource, sys
n = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_NPROC, (n, n))
try:
    os.execvp(sys.argv[2], sys.argv[2:])
except OSError as e:
    print(f"limits: could not start {sys.argv[2]}: {e}", file=sys.stderr, flush=True)
    os._exit(127)
`

/** `command` started inside the sandbox under the task limit. */
export function withTaskLimit(limits: Pick<SandboxLimits, 'python' | 'tasks'>, command: readonly string[]): string[] {
  return [limits.python, '-I', '-S', '-c', TASK_LIMIT_PY, String(limits.tasks), ...command]
}

/** The prefix of each run's cgroup folder: `arg-run-<launcher's child pid>`. */
export const RUN_CGROUP_PREFIX = 'arg-run-'

interface Mount { root: string; at: string; type: 'cgroup' | 'cgroup2'; options: string[] }

/** The cgroup mounts of /proc/self/mountinfo. */
function cgroupMounts(mountinfo: string): Mount[] {
  const out: Mount[] = []
  for (const line of mountinfo.split('\n')) {
    const [left, right] = line.split(' - ')
    if (!left || !right) continue
    const f = left.split(' ')
    const [type, , superOptions = ''] = right.split(' ')
    if (type !== 'cgroup' && type !== 'cgroup2') continue
    out.push({ root: f[3]!, at: f[4]!.replace(/\\040/g, ' '), type, options: superOptions.split(',') })
  }
  return out
}

/**
 * Pure: the folders of this process's own cgroups that hold the pids and memory controllers, from
 * /proc/self/cgroup and /proc/self/mountinfo (a child's files: `cgroupFiles`). On cgroup v2 the
 * controllers come from `subtreeControl`, the controllers the process's cgroup enables for its
 * children (read by the caller): a child has the files only for those.
 */
export function cgroupParents(procCgroup: string, mountinfo: string, subtreeControl: (dir: string) => string | null): CgroupParent[] {
  const mounts = cgroupMounts(mountinfo)
  const own = (m: Mount, path: string) => {
    const rel = m.root === '/' ? path : path.startsWith(`${m.root}/`) || path === m.root ? path.slice(m.root.length) : null
    return rel === null ? null : join(m.at, rel).replace(/(.)\/$/, '$1')
  }
  const out: CgroupParent[] = []
  for (const line of procCgroup.split('\n')) {
    const m = /^(\d+):([^:]*):(.*)$/.exec(line.trim())
    if (!m) continue
    const [, , names, path] = m as unknown as [string, string, string, string]
    if (names === '') {
      const mount = mounts.find(x => x.type === 'cgroup2')
      const dir = mount && own(mount, path)
      const enabled = dir ? (subtreeControl(dir) ?? '').split(/\s+/) : []
      const controllers = (['memory', 'pids'] as const).filter(c => enabled.includes(c))
      if (dir && controllers.length) out.push({ dir, version: 2, controllers })
      continue
    }
    for (const controller of names.split(',')) {
      if (controller !== 'pids' && controller !== 'memory') continue
      const mount = mounts.find(x => x.type === 'cgroup' && x.options.includes(controller))
      const dir = mount && own(mount, path)
      if (dir) out.push({ dir, version: 1, controllers: [controller] })
    }
  }
  return out
}

function read(path: string): string | null {
  try {
    return readFileSync(path, 'utf8')
  } catch {
    return null
  }
}

/**
 * The cgroup parents this worker can use: those in which a child can be made and given its limits,
 * tried now with a child of its own (then removed). Run cgroups left by dead launchers go on the way.
 */
export function usableCgroups(limits: Pick<SandboxLimits, 'tasks' | 'memoryBytes'>): CgroupParent[] {
  const procCgroup = read('/proc/self/cgroup')
  const mountinfo = read('/proc/self/mountinfo')
  if (!procCgroup || !mountinfo) return []
  const usable: CgroupParent[] = []
  for (const found of cgroupParents(procCgroup, mountinfo, dir => read(join(dir, 'cgroup.subtree_control')))) {
    const probe = join(found.dir, `arg-probe-${process.pid}`)
    try {
      mkdirSync(probe)
      const swapFile = found.version === 1 ? 'memory.memsw.limit_in_bytes' : 'memory.swap.max'
      const parent = found.controllers.includes('memory') && existsSync(join(probe, swapFile)) ? { ...found, swap: true } : found
      try {
        for (const [file, value] of Object.entries(cgroupFiles(parent, limits))) writeFileSync(join(probe, file), value)
        usable.push(parent)
      } finally {
        rmdirSync(probe)
      }
    } catch {
      // not ours to divide: skip it
    }
  }
  removeDeadRunCgroups(usable)
  return usable
}

/**
 * removeDeadRunCgroups now, and again a second and five seconds later (the last processes of a
 * sandbox killed with its launcher may still be exiting). The timers keep no process alive.
 */
export function removeDeadRunCgroupsSoon(parents: readonly CgroupParent[]): void {
  removeDeadRunCgroups(parents)
  for (const ms of [1000, 5000]) setTimeout(() => removeDeadRunCgroups(parents), ms).unref()
}

/**
 * Removes the run cgroups under `parents` whose launcher is gone: a launcher killed with its group
 * (a run stopped at its time limit, or cancelled, gets SIGKILL after its grace) or with its worker
 * could not remove its own. One still holding processes stays until a later call.
 */
export function removeDeadRunCgroups(parents: readonly CgroupParent[]): void {
  for (const parent of parents) {
    try {
      for (const name of readdirSync(parent.dir)) {
        const pid = name.startsWith(RUN_CGROUP_PREFIX) ? name.slice(RUN_CGROUP_PREFIX.length) : ''
        if (/^\d+$/.test(pid) && !existsSync(`/proc/${pid}`)) try { rmdirSync(join(parent.dir, name)) } catch { /* processes left */ }
      }
    } catch { /* unreadable */ }
  }
}

/** The volunteer's own floor of free disk (AUTORESEARCH_SANDBOX_DISK_FLOOR_GB), in bytes; undefined: `diskFloor`'s rule. */
export function diskFloorSetting(env: Record<string, string | undefined> = process.env): number | undefined {
  return setting(env, 'AUTORESEARCH_SANDBOX_DISK_FLOOR_GB', 0, 1024 ** 3) || undefined
}

/** `path`, or its nearest ancestor that exists (a state folder not made yet). */
export function nearestExisting(path: string): string {
  let at = resolve(path)
  while (!existsSync(at) && dirname(at) !== at) at = dirname(at)
  return at
}

/**
 * Below the floor, a run that wrote less than this since it started goes on, whatever share of the
 * fall it is: a run that starts on a disk already below the floor (filled by something else) may
 * still write its log, a small model's weights and its compile cache.
 */
export const DISK_SHARE_MIN_BYTES = 256 * 1024 ** 2

/**
 * The free bytes below which the launcher stops a run that writes to `path`'s filesystem: the
 * volunteer's own setting, or 2 % of the filesystem, at least 1 GiB and at most 10 GiB. An honest run
 * writes its weights and compile caches there, a few GB at most.
 */
export function diskFloor(path: string, given?: number): number {
  if (given) return given
  const st = statfsSync(path)
  return Math.min(10 * 1024 ** 3, Math.max(1024 ** 3, Math.floor((st.blocks * st.bsize) / 50)))
}

/**
 * Why runs could not write under `dir` (the state folder): its disk is below the floor already, so
 * every run would be stopped at once. Null when there is room, or when its disk cannot be read.
 */
export function diskProblem(dir: string, given?: number): string | null {
  const at = nearestExisting(dir)
  try {
    const st = statfsSync(at)
    const free = st.bavail * st.bsize
    const floor = diskFloor(at, given)
    if (free >= floor) return null
    const GiB = (n: number) => `${(n / 1024 ** 3).toFixed(1)} GiB`
    return `the disk holding ${dir} has ${GiB(free)} free, and runs are stopped below ${GiB(floor)} free ` +
      '(2 % of the disk, 1-10 GiB, or AUTORESEARCH_SANDBOX_DISK_FLOOR_GB): free some space there, or point --state at a disk with room'
  } catch {
    return null
  }
}

/** The limits of this machine, in words for the worker's start line. */
export function describeLimits(l: SandboxLimits): string {
  const GiB = (n: number) => `${(n / 1024 ** 3).toFixed(1)} GiB`
  const tasks = `tasks ≤ ${l.tasks}`
  const has = (c: 'pids' | 'memory') => l.cgroups.some(g => g.controllers.includes(c))
  const memory = has('memory') ? `memory ≤ ${GiB(l.memoryBytes)} (cgroup)` : 'memory bounded by the machine (the OOM killer takes the run first)'
  const taskHow = has('pids') ? `${tasks} (cgroup)` : l.countTasks ? `${tasks} (counted by the launcher each second: a root worker is exempt from RLIMIT_NPROC, and no cgroup is writable)` : `${tasks} (RLIMIT_NPROC)`
  const disk = l.diskFloorBytes ? `disk: stopped below ${GiB(l.diskFloorBytes)} free` : 'disk: stopped below 2 % free (1-10 GiB)'
  return `${taskHow}, ${memory}, ${disk}`
}

/**
 * A volunteer's own setting, from the environment: a positive number (floored after `scale`), or the default. A box
 * whose honest runs need more tasks or memory than the defaults sets AUTORESEARCH_SANDBOX_TASKS or
 * AUTORESEARCH_SANDBOX_MEMORY_GB, and one that wants more disk kept free AUTORESEARCH_SANDBOX_DISK_FLOOR_GB;
 * anything else is refused at start with what to write.
 */
export function setting(env: Record<string, string | undefined>, name: string, fallback: number, scale = 1): number {
  const raw = env[name]
  if (raw === undefined || raw === '') return fallback
  const n = Number(raw)
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name}=${JSON.stringify(raw)} is not a positive number: unset it, or write e.g. ${name}=${fallback / scale >= 1 ? Math.round(fallback / scale) : 8}`)
  return Math.floor(n * scale)
}

/** This machine's limits for sandboxes run by `python`. */
export function sandboxLimits(python: string, env: Record<string, string | undefined> = process.env): SandboxLimits {
  const tasks = setting(env, 'AUTORESEARCH_SANDBOX_TASKS', taskLimit())
  const memoryBytes = setting(env, 'AUTORESEARCH_SANDBOX_MEMORY_GB', memoryLimit(), 1024 ** 3)
  const floor = diskFloorSetting(env)
  const cgroups = usableCgroups({ tasks, memoryBytes })
  const countTasks = process.getuid?.() === 0 && !cgroups.some(g => g.controllers.includes('pids'))
  return { python, tasks, memoryBytes, cgroups, ...(countTasks ? { countTasks } : {}), ...(floor ? { diskFloorBytes: floor } : {}) }
}

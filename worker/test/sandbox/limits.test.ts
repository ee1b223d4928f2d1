import t, { type Test } from 'tap'
import { existsSync, mkdirSync, readdirSync, rmdirSync, rmSync, statfsSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { execa } from 'execa'
import { launched } from '../../src/runner/launcher.ts'
import { runTrainer } from '../../src/runner/trainer.ts'
import { trainAndMeasure } from '../../src/runner/measure.ts'
import { prepareRunDir } from '../../src/runner/run-dir.ts'
import { removeTree } from '../../src/runner/remove-tree.ts'
import { until } from '../../../shared/test/support/until.ts'
import { workerCli } from '../../../shared/test/support/cli.ts'
import { tagged } from '../fixtures/hostile/world.ts'
import { bwrapCommand, INSIDE, type HostLayout } from '../../src/sandbox/bwrap.ts'
import { detectSandbox } from '../../src/sandbox/detect.ts'
import { cgroupFiles, cgroupParents, describeLimits, DISK_SHARE_MIN_BYTES, diskFloor, diskProblem, memoryLimit, RUN_CGROUP_PREFIX, sandboxLimits, setting, taskLimit, type SandboxLimits } from '../../src/sandbox/limits.ts'

// A stranger's train.py may start threads and processes, or take memory, until the volunteer's
// machine stops answering. Each sandbox now has a task limit (RLIMIT_NPROC inside; a pids cgroup
// where the worker may make one), a memory limit where it may make a memory cgroup, and the OOM
// killer's first place everywhere (src/sandbox/limits.ts).
const PYTHON = process.env.AUTORESEARCH_TEST_PYTHON ?? process.env.AUTORESEARCH_PYTHON ?? 'python3'
const GiB = 1024 ** 3

t.test('the limits scale with the machine and leave the volunteer room', async t => {
  t.equal(taskLimit(2), 4096, 'a small machine: 4096 tasks')
  t.equal(taskLimit(256), 8192, 'a big one: 32 a core')
  t.equal(memoryLimit(24 * GiB), 24 * GiB - Math.floor(2.4 * GiB), 'a tenth of the machine is kept')
  t.equal(memoryLimit(8 * GiB), 6 * GiB, 'at least 2 GiB is kept')
  t.equal(memoryLimit(2 * GiB), GiB, 'a run may always have 1 GiB')
  t.equal(setting({}, 'AUTORESEARCH_SANDBOX_TASKS', 4096), 4096, 'unset: the default')
  t.equal(setting({ AUTORESEARCH_SANDBOX_TASKS: '20000' }, 'AUTORESEARCH_SANDBOX_TASKS', 4096), 20000, 'a volunteer\'s own setting')
  t.equal(setting({ AUTORESEARCH_SANDBOX_MEMORY_GB: '1.5' }, 'AUTORESEARCH_SANDBOX_MEMORY_GB', 8 * GiB, GiB), Math.floor(1.5 * GiB))
  t.throws(() => setting({ AUTORESEARCH_SANDBOX_MEMORY_GB: '8G' }, 'AUTORESEARCH_SANDBOX_MEMORY_GB', 8 * GiB, GiB), /AUTORESEARCH_SANDBOX_MEMORY_GB="8G" is not a positive number: unset it, or write e\.g\. AUTORESEARCH_SANDBOX_MEMORY_GB=8/)
  t.throws(() => setting({ AUTORESEARCH_SANDBOX_TASKS: '0' }, 'AUTORESEARCH_SANDBOX_TASKS', 4096), /is not a positive number/)
})

const LIMITS = { tasks: 100, memoryBytes: 5 * GiB }
const V1_MOUNTS = [
  '31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755',
  '35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory',
  '39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids',
  '32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct',
].join('\n')

t.test('cgroup v1: the pids and memory hierarchies, at the process\'s own place in each', async t => {
  const parents = cgroupParents('9:pids:/\n4:memory:/process_api/abc\n2:cpu,cpuacct:/\n0::/\n', V1_MOUNTS, () => '')
  t.same(parents, [
    { dir: '/sys/fs/cgroup/pids', version: 1, controllers: ['pids'] },
    { dir: '/sys/fs/cgroup/memory/process_api/abc', version: 1, controllers: ['memory'] },
  ])
  t.same(parents.map(p => cgroupFiles(p, LIMITS)), [{ 'pids.max': '100' }, { 'memory.limit_in_bytes': String(5 * GiB) }])
  t.same(Object.entries(cgroupFiles({ ...parents[1]!, swap: true }, LIMITS)), [['memory.limit_in_bytes', String(5 * GiB)], ['memory.memsw.limit_in_bytes', String(5 * GiB)]],
    'with swap accounting, memory and swap together too, written second')
  // A container's view: the hierarchy mounted from the container's own cgroup, not the root.
  const mounted = '40 31 0:36 /docker/c1 /sys/fs/cgroup/pids ro,nosuid - cgroup cgroup rw,pids'
  t.same(cgroupParents('9:pids:/docker/c1/worker\n', mounted, () => null), [{ dir: '/sys/fs/cgroup/pids/worker', version: 1, controllers: ['pids'] }])
  t.same(cgroupParents('9:pids:/elsewhere\n', mounted, () => null), [], 'a place outside the mount is not reachable')
})

t.test('cgroup v2: only the controllers the process\'s cgroup enables for its children', async t => {
  const mounts = '30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate'
  const asked: string[] = []
  const both = cgroupParents('0::/user.slice/worker.scope\n', mounts, dir => { asked.push(dir); return 'cpu memory pids\n' })
  t.same(asked, ['/sys/fs/cgroup/user.slice/worker.scope'])
  t.same(both, [{ dir: '/sys/fs/cgroup/user.slice/worker.scope', version: 2, controllers: ['memory', 'pids'] }])
  t.same(cgroupFiles(both[0]!, LIMITS), { 'pids.max': '100', 'memory.max': String(5 * GiB) }, 'a kernel without swap accounting: memory alone')
  t.same(cgroupFiles({ ...both[0]!, swap: true }, LIMITS), { 'pids.max': '100', 'memory.max': String(5 * GiB), 'memory.swap.max': '0' }, 'with it, no swap either: a run swapping the machine to a crawl is what the limit is for')
  t.same(cgroupParents('0::/a\n', mounts, () => 'pids'), [{ dir: '/sys/fs/cgroup/a', version: 2, controllers: ['pids'] }])
  t.same(cgroupParents('0::/a\n', mounts, () => ''), [], 'nothing enabled: no cgroup of its own (a leaf with processes cannot enable any)')
  t.same(cgroupParents('0::/a\n', mounts, () => null), [], 'unreadable: none')
})

/** Runs a Python payload in a sandbox with these limits, through the launcher as a run is. */
const MiB = 1024 ** 2
const freeUnder = (dir: string) => { const st = statfsSync(dir); return st.bavail * st.bsize }

/** Writes `mib` MiB to the run folder, one fsynced MiB at a time, and says so. */
const DISK_WRITER = (mib: number) => `
import os
with open("${INSIDE.run}/fill", "wb") as f:
    for i in range(${mib}):
        f.write(os.urandom(1 << 20)); f.flush(); os.fsync(f.fileno())
print("wrote", ${mib}, flush=True)
`
/**
 * A run that fills the disk: one fsynced MiB at a time to `path` (deleted first with `unlink`), up to
 * 4 GiB; once it has written 320 MiB (more than the share a run may write below the floor) and the
 * disk is below `floor`, a MiB every 50 ms, so the launcher's once-a-second look finds it well short
 * of 4 GiB however busy the machine, and whatever other tests write to the same disk meanwhile.
 */
const DISK_BOMB = (floor: number, { path = `${INSIDE.run}/fill`, unlink = false } = {}) => `
import os, time
def free():
    st = os.statvfs(os.path.dirname("${path}"))
    return st.f_bavail * st.f_frsize
with open("${path}", "wb") as f:
    if ${unlink ? 'True' : 'False'}:
        os.unlink("${path}")
    for i in range(4096):
        f.write(os.urandom(1 << 20)); f.flush(); os.fsync(f.fileno())
        if i >= 319 and free() < ${floor}:
            time.sleep(0.05)
print("wrote", 4096, flush=True)
`
const LAUNCHER_LINE = /^launcher: .*$/m
/** The launcher's stop came once the bomb had written at least the share a run may write below the floor. */
const wroteShare = (stderr: unknown) => Number(/the run wrote (\d+) MiB of it: stopped/.exec(String(stderr))?.[1]) >= DISK_SHARE_MIN_BYTES / MiB

function sandboxed(host: HostLayout, limits: SandboxLimits, payload: string, prefix: string[] = [], runDir?: string) {
  const mounts = runDir ? [{ host: runDir, inside: INSIDE.run, writable: true }] : []
  const inner = bwrapCommand({ ...host, limits }, { mounts, env: { PATH: '/usr/bin:/bin' }, cwd: INSIDE.home, command: [PYTHON, '-c', payload] })
  const command = launched(PYTHON, [...prefix, ...inner], process.pid, limits, runDir ? [runDir] : [])
  return execa(command[0], command.slice(1), { reject: false, stdin: 'ignore', timeout: 120_000 })
}

const THREADS = `
import os, resource, threading
threading.stack_size(65536)
release, made = threading.Event(), 0
try:
    for made in range(1, 2001):
        threading.Thread(target=release.wait, daemon=True).start()
except RuntimeError:
    made -= 1
release.set()
print("threads", made)
print("nproc", *resource.getrlimit(resource.RLIMIT_NPROC))
try:
    resource.setrlimit(resource.RLIMIT_NPROC, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    print("raised")
except (ValueError, OSError):
    print("not raised")
print("oom", open("/proc/self/oom_score_adj").read().strip())
`

/**
 * The limits with cgroup parents of this test's own, made under the machine's: the run cgroups the
 * test looks for are then its runs' alone, whatever other tests run meanwhile.
 */
function ownParents(t: Test, limits: SandboxLimits, more: Partial<SandboxLimits> = {}): SandboxLimits {
  const cgroups = limits.cgroups.map((g, i) => {
    const dir = join(g.dir, `arg-test-${process.pid}-${i}-${Math.random().toString(36).slice(2, 8)}`)
    mkdirSync(dir)
    t.teardown(() => rmdirSync(dir))
    return { ...g, dir }
  })
  return { ...limits, ...more, cgroups }
}

const count = (out: string, key: string) => Number(new RegExp(`^${key} (\\d+)`, 'm').exec(out)?.[1] ?? Number.NaN)
const runCgroups = (limits: SandboxLimits) => limits.cgroups.flatMap(g => readdirSync(g.dir).filter(n => n.startsWith(RUN_CGROUP_PREFIX)).map(n => join(g.dir, n)))

t.test('inside: tasks stop at the limit, which the code cannot raise, and the OOM killer takes the run first', async t => {
  const found = await detectSandbox(PYTHON)
  if (!found.ok) { t.comment(`no sandbox: ${found.problem}`); return }
  t.ok(found.host.limits, 'every sandbox of this machine has limits')
  t.match(found.how, /tasks (≤ \d+|unbounded)/, `the worker says which: ${found.how}`)
  const limits = ownParents(t, found.host.limits!, { tasks: 64 })
  const r = await sandboxed(found.host, limits, THREADS)
  t.equal(r.exitCode, 0, String(r.stderr).slice(-600))
  const made = count(String(r.stdout), 'threads')
  t.equal(String(r.stdout).match(/^nproc (\d+) (\d+)/m)?.slice(1).join(' '), '64 64', 'RLIMIT_NPROC is the limit, soft and hard')
  t.match(String(r.stdout), /^not raised$/m, 'the code cannot raise it')
  t.match(String(r.stdout), /^oom 1000$/m, 'oom_score_adj 1000: the run dies before the volunteer\'s programs')
  const pids = limits.cgroups.some(g => g.controllers.includes('pids'))
  if (pids || process.getuid?.() !== 0) t.ok(made < 64, `started ${made} threads under a limit of 64 tasks (${pids ? 'pids cgroup' : 'RLIMIT_NPROC'})`)
  else t.comment(`a root worker with no pids cgroup: RLIMIT_NPROC binds no root process (${made} threads)`)
  t.same(runCgroups(limits), [], 'the run\'s cgroups are gone with it')
})

t.test('a worker run as another user than root is held by RLIMIT_NPROC alone', async t => {
  const found = await detectSandbox(PYTHON)
  if (!found.ok) { t.comment(`no sandbox: ${found.problem}`); return }
  const root = process.getuid?.() === 0
  if (root && !existsSync('/usr/bin/setpriv')) { t.comment('root here, and no setpriv to run the sandbox as another user'); return }
  // As nobody: the seccomp program's folder is the worker's own (0700), so this sandbox goes without it.
  const { seccomp: _, ...host } = found.host
  const prefix = root ? ['/usr/bin/setpriv', '--reuid', '65534', '--regid', '65534', '--clear-groups'] : []
  const r = await sandboxed(host, { ...found.host.limits!, tasks: 64, cgroups: [] }, THREADS, prefix)
  if (r.exitCode !== 0 && /namespace|Operation not permitted/i.test(String(r.stderr))) { t.comment(`bwrap refused as nobody here: ${String(r.stderr).trim()}`); return }
  t.equal(r.exitCode, 0, String(r.stderr).slice(-600))
  const made = count(String(r.stdout), 'threads')
  t.ok(made < 64, `started ${made} threads under RLIMIT_NPROC 64, no cgroup`)
})

// `n` threads or processes, each held `seconds` (a bomb: 600, so one left behind fails the test by its
// time-out; the launcher looks each second), then a normal end.
const HOLD = (how: 'threads' | 'processes', n: number, seconds: number, marker = '') => `# ${marker}
import os, sys, threading, time
made = 0
for made in range(1, ${n} + 1):
    if "${how}" == "threads":
        threading.Thread(target=time.sleep, args=(${seconds},), daemon=True).start()
    elif os.fork() == 0:
        os.setsid()  # out of the launcher's process group: the sandbox's PID namespace still ends
        time.sleep(${seconds})
        os._exit(0)
print("made", made, flush=True)
time.sleep(${seconds})
print("survived", flush=True)
`

t.test('where nothing in the kernel bounds tasks (root, no pids cgroup), the launcher counts them and stops the run', async t => {
  const found = await detectSandbox(PYTHON)
  if (!found.ok) { t.comment(`no sandbox: ${found.problem}`); return }
  const limits: SandboxLimits = { ...found.host.limits!, tasks: 64, cgroups: [], countTasks: true }
  t.match(describeLimits(limits), /^tasks ≤ 64 \(counted by the launcher each second/, 'the start line says how')
  for (const how of ['threads', 'processes'] as const) {
    const marker = `bomb-${process.pid}-${how}-${Math.random().toString(36).slice(2)}`
    const r = await sandboxed(found.host, limits, HOLD(how, 300, 600, marker))
    t.notMatch(String(r.stdout), /survived/, `${how}: the run did not go on past its limit`)
    t.match(String(r.stderr), /launcher: the run had \d+ tasks, over its limit of 64: stopped/, `${how}: the log says why`)
    t.ok(r.signal === 'SIGKILL' || r.exitCode === 137, `${how}: killed (${r.signal ?? r.exitCode})`)
    await until(`${how}: none of the run's processes left`, () => tagged(marker).length === 0, { describe: () => tagged(marker).join(' ') })
  }
  const honest = await sandboxed(found.host, limits, HOLD('threads', 8, 2))
  t.equal(honest.exitCode, 0, `a run under the limit is left alone: ${String(honest.stderr).slice(-300)}`)
  t.match(String(honest.stdout), /^survived$/m)
  const plain = launched(PYTHON, ['true'], process.pid, { ...limits, countTasks: false })
  t.match(plain[6]!, /"count_tasks":0/, 'a worker the kernel bounds counts nothing')
})

t.test('a run that fills the disk it writes to is stopped at the floor of free space', async t => {
  const found = await detectSandbox(PYTHON)
  if (!found.ok) { t.comment(`no sandbox: ${found.problem}`); return }
  const runDir = t.testdir({})
  const free = () => freeUnder(runDir)
  // The floor 48 MiB under what is free now: the bomb crosses it, and writes more than the share a
  // run may write below the floor (DISK_SHARE_MIN_BYTES).
  const floor = free() - 48 * MiB
  const r = await sandboxed(found.host, { ...found.host.limits!, diskFloorBytes: floor }, DISK_BOMB(floor), [], runDir)
  t.notMatch(String(r.stdout), /wrote/, 'it did not write its 4 GiB')
  t.match(String(r.stderr), /launcher: the disk the run writes to had \d+ MiB free, below the floor of \d+ MiB; the run wrote \d+ MiB of it: stopped/, 'the log says why')
  t.ok(wroteShare(r.stderr), `stopped once it had written its share: ${String(r.stderr).match(LAUNCHER_LINE)?.[0]}`)
  t.ok(r.signal === 'SIGKILL' || r.exitCode === 137, `killed (${r.signal ?? r.exitCode})`)
  t.ok(statSync(join(runDir, 'fill')).size < 4096 * MiB, `it wrote ${statSync(join(runDir, 'fill')).size >> 20} MiB, not the whole of it`)
  // A run as the worker starts it: its writable mounts are what the launcher watches, and the error says why.
  rmSync(join(runDir, 'fill')) // the space the first one held is free again: this one crosses the floor by itself
  const again = free() - 48 * MiB
  const run = await runTrainer({
    python: PYTHON, runDir, budgetSeconds: 60, profile: 'cpu-tiny', argv: [PYTHON, '-c', DISK_BOMB(again)],
    sandbox: { host: { ...found.host, limits: { ...found.host.limits!, diskFloorBytes: again } }, mounts: [{ host: runDir, inside: INSIDE.run, writable: true }], env: {} },
  })
  t.match(run.error ?? '', /^train\.py was stopped past a limit of the sandbox: the disk the run writes to had \d+ MiB free, below the floor of \d+ MiB; the run wrote \d+ MiB of it$/, 'the run\'s error names the limit')
  rmSync(join(runDir, 'fill'))
  const honest = await sandboxed(found.host, { ...found.host.limits!, diskFloorBytes: Math.floor(free() / 2) }, DISK_WRITER(4), [], runDir)
  t.equal(honest.exitCode, 0, `a run far from the floor is left alone: ${String(honest.stderr).slice(-300)}`)
  t.match(describeLimits({ ...found.host.limits!, diskFloorBytes: 2 * GiB }), /disk: stopped below 2\.0 GiB free$/)
  // The worker will not start on a disk already below the floor: each run would be stopped at once.
  t.equal(diskProblem(join(runDir, 'not', 'made', 'yet'), Math.floor(free() / 2)), null, 'room: no problem')
  t.match(diskProblem(join(runDir, 'not', 'made', 'yet'), 2 * free()) ?? '', /^the disk holding .*yet has [\d.]+ GiB free, and runs are stopped below [\d.]+ GiB free \(2 % of the disk, 1-10 GiB, or AUTORESEARCH_SANDBOX_DISK_FLOOR_GB\): free some space there, or point --state at a disk with room$/)
  const defaultFloor = diskFloor(runDir)
  t.ok(defaultFloor >= GiB && defaultFloor <= 10 * GiB, `the default floor here: ${(defaultFloor / GiB).toFixed(1)} GiB`)
  t.equal(sandboxLimits(PYTHON, { AUTORESEARCH_SANDBOX_DISK_FLOOR_GB: '3' }).diskFloorBytes, 3 * GiB, 'a volunteer\'s own floor')
  t.match(describeLimits({ ...found.host.limits!, diskFloorBytes: undefined }), /disk: stopped below 2 % free \(1-10 GiB\)$/)
})

t.test('below the floor, only the run that wrote its share is stopped: an honest run beside a disk bomb goes on', async t => {
  const found = await detectSandbox(PYTHON)
  if (!found.ok) { t.comment(`no sandbox: ${found.problem}`); return }
  const [bombDir, honestDir, deepDir] = [t.testdir({ bomb: {}, honest: {}, deep: {} })].flatMap(d => [join(d, 'bomb'), join(d, 'honest'), join(d, 'deep')])
  const floor = freeUnder(bombDir) - 160 * MiB
  const limits = { ...found.host.limits!, diskFloorBytes: floor }
  // The honest run writes 8 MiB, waits for the disk to fall below the floor and then for the test's
  // word (given once its launcher has looked at the disk below the floor and let it go on), and ends.
  const honest = sandboxed(found.host, limits, `
import os, time
with open("${INSIDE.run}/weights", "wb") as f:
    f.write(os.urandom(8 << 20))
def free():
    st = os.statvfs("${INSIDE.run}")
    return st.f_bavail * st.f_frsize
while free() >= ${floor}:
    time.sleep(0.05)
print("below the floor", flush=True)
while not os.path.exists("${INSIDE.run}/go"):
    time.sleep(0.05)
print("survived", flush=True)
`, [], honestDir)
  let said = ''
  honest.stderr?.on('data', (chunk: Buffer) => { said += chunk })
  const bomb = await sandboxed(found.host, limits, DISK_BOMB(floor), [], bombDir)
  t.match(String(bomb.stderr), /below the floor of \d+ MiB; the run wrote \d+ MiB of it: stopped/, 'the bomb is stopped')
  t.ok(wroteShare(bomb.stderr), `once it had written its share: ${String(bomb.stderr).match(LAUNCHER_LINE)?.[0]}`)
  await until('the honest run\'s launcher to look at the disk below the floor', () => /but the run wrote only \d+ MiB of the \d+ MiB lost since it started: it goes on/.test(said), { describe: () => said })
  writeFileSync(join(honestDir, 'go'), '')
  const ended = await honest
  t.equal(ended.exitCode, 0, `the honest run beside it ends by itself: ${String(ended.stderr).slice(-400)}`)
  t.match(String(ended.stdout), /survived/)
  t.match(said, /the run wrote only [0-9] MiB/, 'its own 8 MiB were counted, not the bomb\'s')

  // A run whose folders cannot be read whole is taken for the writer: here a tree deeper than a path
  // can name (a folder of mode 000 is another way, for a worker that is not root).
  // Its floor 2 GiB above what is free: below the floor, and far from half of it.
  const deep = await sandboxed(found.host, { ...limits, diskFloorBytes: freeUnder(deepDir) + 2 * GiB }, `
import os, time
os.chdir("${INSIDE.run}")
for i in range(30):
    os.mkdir("d" * 200)
    os.chdir("d" * 200)
open("fill", "wb").write(os.urandom(1 << 20))
time.sleep(600)
`, [], deepDir)
  t.match(String(deep.stderr), /below the floor of \d+ MiB, and the run's folders could not be read whole: stopped/, 'it is stopped, though it wrote 1 MiB')
  await removeTree(deepDir)
})

t.test('a file the run deleted but holds open counts as its own, and below half the floor every run stops', async t => {
  const found = await detectSandbox(PYTHON)
  if (!found.ok) { t.comment(`no sandbox: ${found.problem}`); return }
  const runDir = t.testdir({})
  // No walk of its folders finds this: the name is gone before the first byte.
  const floor = freeUnder(runDir) - 48 * MiB
  const hidden = await sandboxed(found.host, { ...found.host.limits!, diskFloorBytes: floor }, DISK_BOMB(floor, { unlink: true }), [], runDir)
  t.match(String(hidden.stderr), /below the floor of \d+ MiB; the run wrote \d+ MiB of it: stopped/, `stopped: ${String(hidden.stderr).match(LAUNCHER_LINE)?.[0]}`)
  t.ok(wroteShare(hidden.stderr), 'its deleted file was counted')
  t.same(readdirSync(runDir), [], 'it had no name to find')
  // Far below the floor (half of it), a run that wrote nothing is stopped too: the disk comes first.
  // A floor of four times what is free: no other test frees that much meanwhile.
  const honest = await sandboxed(found.host, { ...found.host.limits!, diskFloorBytes: 4 * freeUnder(runDir) }, 'import time\ntime.sleep(600)', [], runDir)
  t.match(String(honest.stderr), /below the floor of \d+ MiB, and below half of it every run on it stops, whoever wrote: stopped/)
})

t.test('a run stopped at the floor leaves nothing on the disk: its run folder is emptied and its compile cache is not kept', async t => {
  const found = await detectSandbox(PYTHON)
  if (!found.ok) { t.comment(`no sandbox: ${found.problem}`); return }
  const dir = t.testdir({ run: {}, cache: {}, trainer: { 'prepare.py': '# locked\n' } })
  const [runDir, cacheDir, trainerDir] = ['run', 'cache', 'trainer'].map(n => join(dir, n))
  // Before go (it never asks for its data), into the compile cache a start-up may write.
  const floor = freeUnder(runDir) - 48 * MiB
  const train = DISK_BOMB(floor, { path: `${INSIDE.cache}/compile/inductor/fill` })
  await prepareRunDir({ runDir, files: { 'train.py': train }, trainerDir, lockedFiles: ['prepare.py'] })
  const m = await trainAndMeasure({
    python: PYTHON, trainerDir, runDir, budgetSeconds: 60, profile: 'cpu-tiny', cacheDir, sourceHash: 'f'.repeat(64),
    sandbox: { ...found.host, limits: { ...found.host.limits!, diskFloorBytes: floor } },
  })
  t.equal(m.status, 'crash')
  t.match(m.error ?? '', /was stopped past a limit of the sandbox: the disk the run writes to had \d+ MiB free/, m.logTail.slice(-400))
  t.same(readdirSync(runDir), [], 'the run folder is empty')
  const left = readdirSync(cacheDir, { recursive: true, withFileTypes: true }).filter(f => f.isFile() && f.name === 'fill')
  t.same(left.map(f => f.name), [], 'nothing it wrote is kept in the compile cache: the space is free again')
})

t.test('worker join will not start on a disk below the floor, and says what to do', async t => {
  const found = await detectSandbox(PYTHON)
  if (!found.ok) { t.comment(`no sandbox: ${found.problem}`); return }
  const state = t.testdir({})
  // A floor of a petabyte: no disk here has that free. Nothing listens on port 9: it must not get as far as connecting.
  const r = await execa(process.execPath, [workerCli, 'join', 'http://127.0.0.1:9', '--token', 'arg_wrk_disk-floor-test', '--name', 'floor', '--state', state, '--max-units', '1'],
    { reject: false, all: true, stdin: 'ignore', timeout: 300_000, env: { AUTORESEARCH_SANDBOX_DISK_FLOOR_GB: '1000000', AUTORESEARCH_PYTHON: PYTHON } })
  t.equal(r.exitCode, 3, String(r.all).slice(-600))
  t.match(String(r.all), /refusing work: the disk holding .* has [\d.]+ GiB free, and runs are stopped below 1000000\.0 GiB free .*: free some space there, or point --state at a disk with room/)
  t.match(String(r.all), /disk: stopped below 1000000\.0 GiB free/, 'its start line says the floor')
})

t.test('memory past the run\'s cgroup limit kills the run, not the worker', async t => {
  const found = await detectSandbox(PYTHON)
  if (!found.ok) { t.comment(`no sandbox: ${found.problem}`); return }
  const limits = ownParents(t, found.host.limits!, { memoryBytes: 256 * 1024 ** 2 })
  if (!limits.cgroups.some(g => g.controllers.includes('memory'))) { t.comment('no memory cgroup this worker may make here: memory is bounded by the machine (and the OOM killer takes the run first)'); return }
  const r = await sandboxed(found.host, limits, `
chunks = []
for i in range(32):
    chunks.append(bytearray(64 * 1024 * 1024))  # 2 GiB in all, every page written
    print("held", (i + 1) * 64, "MiB", flush=True)
print("survived")`)
  t.notMatch(String(r.stdout), /survived/, 'the run did not get 2 GiB past a 256 MiB limit')
  t.ok(r.signal === 'SIGKILL' || r.exitCode === 137, `killed by the kernel (${r.signal ?? r.exitCode}), after ${String(r.stdout).trim().split('\n').pop()}`)
  t.ok(count(String(r.stdout), 'held') <= 256, 'no more than the limit was ever held')
  t.same(runCgroups(limits), [], 'the run\'s cgroups are gone with it')
})

t.test('a run the worker stops at its time limit leaves no cgroup behind, though its launcher is killed with it', async t => {
  const found = await detectSandbox(PYTHON)
  if (!found.ok) { t.comment(`no sandbox: ${found.problem}`); return }
  if (!found.host.limits?.cgroups.length) { t.comment('no cgroup this worker may make here'); return }
  const limits = ownParents(t, found.host.limits)
  const runDir = t.testdir({})
  const r = await runTrainer({
    python: PYTHON, runDir, budgetSeconds: 1, hardTimeoutSeconds: 2, killGraceSeconds: 1, profile: 'cpu-tiny',
    argv: [PYTHON, '-c', 'import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint("holding", flush=True)\ntime.sleep(600)'],
    sandbox: { host: { ...found.host, limits }, mounts: [{ host: runDir, inside: INSIDE.run, writable: true }], env: {} },
  })
  t.ok(r.timedOut, 'stopped at its limit')
  await until('the run\'s cgroups to be gone', () => runCgroups(limits).length === 0, { describe: () => runCgroups(limits).join('\n') })
  t.pass('its cgroups are gone')
})

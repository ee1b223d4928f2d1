import { cgroupFiles, DISK_SHARE_MIN_BYTES, diskFloor, RUN_CGROUP_PREFIX, type SandboxLimits } from '../sandbox/limits.ts'

/**
 * The trainer starts through a tiny launcher of ours that ties its life to the worker's. The
 * runner's `process.on('exit')` hook (process-group.ts) cannot run when the worker is killed with
 * SIGKILL or by the OOM killer; without the launcher, train.py would go on holding the
 * volunteer's GPU as an orphan. The launcher is the leader of the trainer's process group and its
 * parent: when the worker dies it kills the whole group (train.py, bwrap and the sandbox's PID 1,
 * whatever train.py started). On Linux the kernel tells it at once (prctl PR_SET_PDEATHSIG);
 * elsewhere it notices within a fifth of a second that its parent changed.
 *
 * It is Python because the trainer's interpreter is the one program the worker knows is there; it
 * runs isolated (`-I -S`: no run folder, site-packages or PYTHON* variables on its path), so
 * nothing the agent wrote is imported by it. It is ours, not the agent's: the safety policy is for
 * train.py, which it only execs.
 */
export const LAUNCHER_PY = `
import json, os, signal, sys, time
worker, limits, argv = int(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3:]
RUN_CGROUP = "${RUN_CGROUP_PREFIX}%d"

def kill_group(*_):
    os.killpg(0, signal.SIGKILL)  # the trainer, what it started, and this launcher

signal.signal(signal.SIGUSR2, kill_group)
poll = 0.2
if sys.platform.startswith("linux"):
    try:
        import ctypes
        if ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGUSR2), 0, 0, 0) == 0:  # PR_SET_PDEATHSIG
            poll = None
    except (OSError, AttributeError):
        pass
if os.getppid() != worker:  # the worker died before the kernel was told
    kill_group()
# A session of our own, with no terminal (the runner starts us detached: then we lead it already).
# Everything the trainer starts stays in it and in our group: bwrap runs without --new-session.
if os.getsid(0) != os.getpid():
    try:
        os.setsid()
    except OSError:
        pass

def processes():
    """Every process's children and its number of tasks (threads), from /proc."""
    children, threads = {}, {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat", "rb") as f:
                stat = f.read()
            fields = stat[stat.rfind(b")") + 2:].split()  # after the name, which may hold anything
            parent, n = int(fields[1]), int(fields[17])
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        children.setdefault(parent, []).append(int(d))
        threads[int(d)] = n
    return children, threads

def below(root, children):
    """\`root\` and every process below it: in the sandbox's PID namespaces too, whose orphans go to
    their namespace's first process, which is below \`root\`."""
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, ()))
    return out

def tasks_below(root):
    """The tasks (threads) of \`root\` and every process below it."""
    children, threads = processes()
    return sum(threads.get(p, 0) for p in below(root, children))

def deleted_but_open(root):
    """Files the run's processes hold open after deleting them, which no walk of its folders finds:
    (device, inode) -> bytes. (What only a message in flight on a socket holds is not seen: the floor
    below which every run stops is for that.)"""
    held = {}
    for p in below(root, processes()[0]):
        try:
            fds = os.listdir(f"/proc/{p}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                s = os.stat(f"/proc/{p}/fd/{fd}")
            except OSError:
                continue
            if s.st_nlink == 0 and s.st_mode & 0o170000 == 0o100000:
                held[(s.st_dev, s.st_ino)] = s.st_blocks * 512
    return held

def free_bytes(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize

WALK_MOST = 500000

def held_under(paths):
    """The bytes each file and folder under \`paths\` holds, by (device, inode): a file with several
    names counts once. None when the trees cannot be read whole (a folder the run made unreadable, a
    path too long to name, more names than WALK_MOST): then the run is taken for the writer."""
    held, todo = {}, list(paths)
    while todo:
        p = todo.pop()
        try:
            s = os.lstat(p)
        except FileNotFoundError:
            continue  # gone meanwhile
        except OSError:
            return None
        held[(s.st_dev, s.st_ino)] = s.st_blocks * 512
        if len(held) > WALK_MOST:
            return None
        if s.st_mode & 0o170000 == 0o040000:  # a folder, never a link to one
            try:
                todo.extend(os.path.join(p, n) for n in os.listdir(p))
            except FileNotFoundError:
                continue
            except OSError:
                return None
    return held

def written_since(paths, before, root):
    """What the run wrote under \`paths\` since \`before\` (held_under at its start), and into files it
    deleted but holds open, in bytes by device: new files whole, older ones by what they grew. Hard
    links to what was there (the compile cache's copies, frozen at go) write nothing. None: not
    readable whole."""
    now = held_under(paths)
    if now is None or before is None:
        return None
    now.update(deleted_but_open(root))
    out = {}
    for key, b in now.items():
        grew = b - before.get(key, 0)
        if grew > 0:
            out[key[0]] = out.get(key[0], 0) + grew
    return out

# [path, the free bytes below which a run that wrote its share stops]. Below the floor the launcher
# stops its run only if the run itself wrote at least half of the space lost since it started (and
# at least share_min): a hostile run that fills the disk does not get an honest one beside it stopped.
# Below half the floor every run stops: writes no count sees (a file passed on a socket) end there.
disks = limits.get("disks", [])
share_min = int(limits.get("disk_share_min") or 0)
# What the run's folders hold and how much is free, taken before the fork: nothing of the run's has
# run yet, so nothing it writes (or fallocates) at once can pass for what was there.
if disks:
    start = {}
    for path, floor in disks:
        try:
            start[path] = (os.stat(path).st_dev, free_bytes(path))
        except OSError:
            pass
    before = held_under([path for path, _ in disks])
    spared = set()  # devices whose "goes on" was said

# The runner signals the whole group: the trainer gets its SIGTERM; the launcher waits to report.
for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(s, lambda *_: None)
pid = os.fork()
if pid == 0:
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR2):
        signal.signal(s, signal.SIG_DFL)
    # A new, empty session keyring: the worker's (Kerberos tickets, login keys) stays out of reach.
    if sys.platform.startswith("linux"):
        try:
            import ctypes, platform
            nr = {"x86_64": 250, "aarch64": 219}.get(platform.machine())  # keyctl
            if nr:
                ctypes.CDLL(None, use_errno=True).syscall(nr, 1, None)  # KEYCTL_JOIN_SESSION_KEYRING
        except (OSError, AttributeError):
            pass
    # No core dumps, and no way to allow them (the hard limit; no user namespace can raise it): where
    # core_pattern is a pipe (apport, systemd-coredump), a crash inside the sandbox had a helper run
    # as root on the host, outside every namespace, read the crashed process's memory, as the run laid it out.
    import resource
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    # When memory runs out, the OOM killer takes the run first, not the volunteer's programs.
    try:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write(str(limits.get("oom", 1000)))
    except OSError:
        pass
    # A cgroup of the run's own under each parent the worker may divide (sandbox/limits.ts).
    for parent in limits.get("cgroups", []):
        d = os.path.join(parent["dir"], RUN_CGROUP % os.getpid())
        try:
            os.mkdir(d)
            for name, value in parent["files"].items():
                with open(os.path.join(d, name), "w") as f:
                    f.write(value)
            with open(os.path.join(d, "cgroup.procs"), "w") as f:
                f.write(str(os.getpid()))
        except OSError as e:
            print(f"launcher: no {'+'.join(parent['controllers'])} cgroup for this run: {e}", file=sys.stderr, flush=True)
    # Only standard input and output go on: a descriptor the worker inherited from whatever started
    # it (a pipe of a CI harness was seen at fd 251 in train.py) is not the trainer's to hold.
    try:
        fds = [int(fd) for fd in os.listdir("/proc/self/fd")]
    except OSError:
        fds = range(3, 1024)
    for fd in fds:
        if fd > 2:
            try:
                os.close(fd)
            except OSError:
                pass
    try:
        os.execvp(argv[0], argv)
    except OSError as e:
        print(f"launcher: could not start {argv[0]}: {e}", file=sys.stderr, flush=True)
        os._exit(127)

count = int(limits.get("count_tasks") or 0)
watch = count or disks
if watch:
    import select
    try:
        wake = os.pidfd_open(pid)  # readable when the child ends: no wait after a run
    except (AttributeError, OSError):
        wake = None

def stop(why):
    print(f"launcher: {why}: stopped", file=sys.stderr, flush=True)
    kill_group()

while True:
    done, status = os.waitpid(pid, os.WNOHANG if (poll or watch) else 0)
    if done:
        break
    if os.getppid() != worker:
        kill_group()
    if watch:
        n = tasks_below(pid) if count else 0
        if n > count:
            stop(f"the run had {n} tasks, over its limit of {count}")
        wrote = False
        for path, floor in disks:
            try:
                free = free_bytes(path)
            except OSError:
                continue
            if free >= floor or path not in start:
                continue
            dev, free_then = start[path]
            if wrote is False:
                wrote = written_since([p for p, _ in disks], before, pid)
            low = f"the disk the run writes to had {free >> 20} MiB free, below the floor of {floor >> 20} MiB"
            if free < floor // 2:
                stop(f"{low}, and below half of it every run on it stops, whoever wrote")
            if wrote is None:
                stop(f"{low}, and the run's folders could not be read whole")
            mine, lost = wrote.get(dev, 0), max(0, free_then - free)
            if mine >= max(lost // 2, share_min):
                stop(f"{low}; the run wrote {mine >> 20} MiB of it")
            if dev not in spared:
                spared.add(dev)
                print(f"launcher: {low}, but the run wrote only {mine >> 20} MiB of the {lost >> 20} MiB lost since it started: it goes on", file=sys.stderr, flush=True)
        if wake is not None:
            select.select([wake], [], [], 1.0)
        else:
            time.sleep(0.2)
    else:
        time.sleep(poll)
# The run's cgroups go once the last of its processes has (the sandbox's die with its PID 1).
for parent in limits.get("cgroups", []):
    d = os.path.join(parent["dir"], RUN_CGROUP % pid)
    for _ in range(100):
        try:
            os.rmdir(d)
            break
        except FileNotFoundError:
            break
        except OSError:
            time.sleep(0.05)

# Ends the way the trainer ended, so the runner reads the trainer's exit code or signal.
if os.WIFSIGNALED(status):
    sig = os.WTERMSIG(status)
    try:
        signal.signal(sig, signal.SIG_DFL)
    except (OSError, ValueError):
        pass
    os.kill(os.getpid(), sig)
sys.exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1)
`

/** What of a sandbox's limits the launcher is given. */
export type LaunchLimits = Pick<SandboxLimits, 'cgroups' | 'tasks' | 'memoryBytes' | 'countTasks' | 'diskFloorBytes'>

/** The line the launcher prints when it stops a run past one of its limits: the limit, in words. */
export const LIMIT_STOP = /^launcher: (.*): stopped$/m

/** The line the launcher prints when the command it was given cannot be started (exit code 127). */
export const LAUNCH_FAILED = /^launcher: could not start (.*)$/m

/**
 * `command` run through the launcher by `python`, for a worker whose pid is `workerPid`; with a
 * sandbox's `limits`, in cgroups of its own where this machine has them, its tasks counted by the
 * launcher each second where nothing in the kernel bounds them (`countTasks`), and stopped when a
 * filesystem it `writes` to (its writable mounts) runs low and the run wrote its share of the fall
 * (sandbox/limits.ts, the disk floor).
 */
export function launched(python: string, command: readonly string[], workerPid = process.pid, limits?: LaunchLimits, writes: readonly string[] = []): string[] {
  const cgroups = (limits?.cgroups ?? []).map(g => ({ dir: g.dir, controllers: g.controllers, files: cgroupFiles(g, limits!) }))
  const disks = limits ? writes.flatMap(path => { try { return [[path, diskFloor(path, limits.diskFloorBytes)]] } catch { return [] } }) : []
  const conf = { oom: 1000, cgroups, count_tasks: limits?.countTasks ? limits.tasks : 0, disks, disk_share_min: DISK_SHARE_MIN_BYTES }
  return [python, '-I', '-S', '-c', LAUNCHER_PY, String(workerPid), JSON.stringify(conf), ...command]
}

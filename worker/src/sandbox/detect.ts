import { accessSync, constants, readFileSync, statSync } from 'node:fs'
import { delimiter, isAbsolute, join, resolve } from 'node:path'
import { execa } from 'execa'
import { bwrapCommand, INSIDE, type HostLayout } from './bwrap.ts'
import { probeHost } from './host.ts'
import { describeLimits } from './limits.ts'

export interface Sandbox {
  ok: true
  host: HostLayout
  /** In words, for the log and `worker doctor`. */
  how: string
}

export interface NoSandbox {
  ok: false
  /** What went wrong, e.g. "bwrap is not installed". */
  problem: string
  /** What the volunteer can do about it, in commands. */
  fix: string
}

function readSysctl(path: string): string | null {
  try {
    return readFileSync(path, 'utf8').trim()
  } catch {
    return null
  }
}

/**
 * Pure, given the sysctls: why user namespaces (which bwrap needs without setuid) are refused, and
 * the fix. Ubuntu 23.10+ restricts them through AppArmor; some distributions switch them off.
 */
export function diagnoseUserNamespaces(sysctl: (path: string) => string | null, stderr: string): NoSandbox {
  const problem = `bwrap cannot create its namespaces: ${stderr || 'no reason given'}`
  if (sysctl('/proc/sys/kernel/apparmor_restrict_unprivileged_userns') === '1') {
    return {
      ok: false, problem,
      fix: 'AppArmor restricts unprivileged user namespaces (Ubuntu 23.10 and later). Allow bwrap alone with a profile:\n' +
        "  printf 'abi <abi/4.0>,\\ninclude <tunables/global>\\nprofile bwrap /usr/bin/bwrap flags=(unconfined) {\\n  userns,\\n}\\n' | sudo tee /etc/apparmor.d/bwrap\n" +
        '  sudo systemctl reload apparmor\n' +
        'or, for the whole machine: sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0',
    }
  }
  if (sysctl('/proc/sys/kernel/unprivileged_userns_clone') === '0') {
    return { ok: false, problem, fix: 'unprivileged user namespaces are off: sudo sysctl -w kernel.unprivileged_userns_clone=1 (and in /etc/sysctl.d/ to keep it)' }
  }
  if (sysctl('/proc/sys/user/max_user_namespaces') === '0') {
    return { ok: false, problem, fix: 'user namespaces are off: sudo sysctl -w user.max_user_namespaces=15000 (and in /etc/sysctl.d/ to keep it)' }
  }
  return {
    ok: false, problem,
    fix: 'inside a container, user namespaces are usually forbidden by its seccomp profile: run the worker on the host, ' +
      'or start the container with --security-opt seccomp=unconfined --security-opt apparmor=unconfined (docker) / --privileged, ' +
      'or install bwrap setuid root (chmod u+s $(which bwrap))',
  }
}

const cache = new Map<string, Promise<Sandbox | NoSandbox>>()

/**
 * The absolute path of an executable: a name with a slash as it stands, a bare name from PATH's
 * absolute entries only. The sandbox was started as `bwrap`, looked up on PATH each time, and the
 * evaluator starts its model servers with the run folder as its working directory, after training
 * wrote there: where PATH held an empty entry or `.` (the working directory), a train.py that left
 * an executable named `bwrap` in its run folder had evaluate.py run it, unsandboxed, as the worker.
 */
export function absoluteExecutable(name: string, path = process.env.PATH ?? ''): string | null {
  if (name.includes('/')) return resolve(name)
  for (const dir of path.split(delimiter)) {
    if (!isAbsolute(dir)) continue
    const candidate = join(dir, name)
    try {
      accessSync(candidate, constants.X_OK)
      if (statSync(candidate).isFile()) return candidate
    } catch {
      // not here
    }
  }
  return null
}

/**
 * Why bwrap cannot bound the sandbox's tmpfs sizes here (bwrap.ts TMPFS_BYTES), or null when it can:
 * `--size` came with bubblewrap 0.7.0 and is refused by a setuid bwrap. Ubuntu 22.04 ships 0.6.1 and
 * Debian 11 0.4.1: there the option failed every sandbox, the worker's own check included, so the
 * tmpfs go unbounded instead, as they were before, and the worker says so when it starts.
 */
export function tmpfsSizeProblem(versionText: string, isSetuid: boolean): string | null {
  if (isSetuid) return 'tmpfs sizes unbounded: bwrap is installed setuid, which refuses --size'
  const m = /(\d+)\.(\d+)(?:\.(\d+))?/.exec(versionText)
  if (!m) return `tmpfs sizes unbounded: bwrap's version is unknown (${JSON.stringify(versionText.slice(0, 40))})`
  const [major, minor] = [Number(m[1]), Number(m[2])]
  return major > 0 || minor >= 7 ? null : `tmpfs sizes unbounded: bubblewrap ${m[0]} has no --size (0.7.0 and later do)`
}

/** The set-user-ID bit (node's fs.constants has no name for it). */
const S_ISUID = 0o4000

function setuid(file: string): boolean {
  try {
    return (statSync(file).mode & S_ISUID) !== 0
  } catch {
    return false
  }
}

/**
 * Finds bubblewrap and proves it works here: runs the trainer's Python inside a sandbox built the
 * way every run's is, and checks from inside that the network and the host's HOME are gone.
 */
export function detectSandbox(python: string, options: { bwrap?: string; fresh?: boolean } = {}): Promise<Sandbox | NoSandbox> {
  const named = options.bwrap ?? process.env.AUTORESEARCH_BWRAP ?? 'bwrap'
  const bwrap = absoluteExecutable(named)
  const key = `${bwrap ?? named}\0${python}`
  if (!options.fresh && cache.has(key)) return cache.get(key)!
  const probe = (async (): Promise<Sandbox | NoSandbox> => {
    const version = bwrap ? await execa(bwrap, ['--version'], { reject: false, stdin: 'ignore', timeout: 10_000 }) : null
    if (!bwrap || version?.exitCode !== 0) {
      return {
        ok: false, problem: `bubblewrap (${bwrap ?? named}) is not installed`,
        fix: 'install it: sudo apt-get install bubblewrap (Debian/Ubuntu), sudo dnf install bubblewrap (Fedora), sudo pacman -S bubblewrap (Arch); or point AUTORESEARCH_BWRAP at a bwrap binary',
      }
    }
    const version_ = String(version!.stdout).trim()
    let host: HostLayout
    try {
      host = await probeHost(bwrap, python)
    } catch (err) {
      const message = (err as Error).message
      return { ok: false, problem: message, fix: /^AUTORESEARCH_SANDBOX_/.test(message) ? 'set it as the problem says' : 'check that the trainer Python runs (worker doctor)' }
    }
    const unbounded = tmpfsSizeProblem(version_, setuid(bwrap))
    if (unbounded) host = { ...host, tmpfsBytes: 0 }
    // The network must be gone, and a nested user namespace refused (the seccomp filter in force).
    const check = 'import ctypes, socket, os, sys\ns = socket.socket()\ntry:\n    s.connect(("1.1.1.1", 53)); print("net")\nexcept OSError:\n    pass\n' +
      'if ctypes.CDLL(None, use_errno=True).unshare(0x10000000) == 0:\n    print("userns")\nimport resource\nprint("nproc", resource.getrlimit(resource.RLIMIT_NPROC)[1])\nprint(os.getuid(), os.getcwd())'
    const cmd = bwrapCommand(host, { mounts: [], env: { PATH: '/usr/bin:/bin' }, cwd: INSIDE.home, command: [python, '-I', '-c', check] })
    const r = await execa(cmd[0], cmd.slice(1), { reject: false, stdin: 'ignore', timeout: 300_000 }) // a hang guard: importing torch took over 60 s at load 30
    const out = String(r.stdout)
    const stderr = String(r.stderr).trim().split('\n').pop() ?? ''
    if (r.exitCode !== 0 && host.seccomp && /seccomp/i.test(stderr)) {
      return { ok: false, problem: `the kernel refused the sandbox's seccomp filter: ${stderr}`, fix: 'run the worker on a Linux kernel built with CONFIG_SECCOMP_FILTER (every major distribution\'s is), or report this with `uname -a`' }
    }
    if (r.exitCode !== 0) return diagnoseUserNamespaces(readSysctl, stderr)
    if (out.includes('net')) return { ok: false, problem: 'the sandbox could reach the network', fix: 'report this: bwrap --unshare-all should remove the network' }
    if (host.seccomp && out.includes('userns')) return { ok: false, problem: 'the sandbox\'s seccomp filter is not in force (a nested user namespace was allowed)', fix: 'report this with `bwrap --version` and `uname -a`' }
    if (host.limits && !out.includes(`nproc ${host.limits.tasks}\n`)) return { ok: false, problem: `the sandbox's task limit is not in force (${/nproc \S+/.exec(out)?.[0] ?? 'no answer'})`, fix: 'report this with `uname -a`' }
    const filter = host.seccomp ? 'seccomp filter' : `no seccomp filter (none written for ${process.arch})`
    return { ok: true, host, how: `bubblewrap sandbox (${version_}; no network, private HOME and /tmp, read-only system, ${filter}, ${host.devices.length} GPU device node(s)${unbounded ? `; ${unbounded}` : ''}${host.limits ? `; ${describeLimits(host.limits)}` : ''})` }
  })()
  cache.set(key, probe)
  return probe
}

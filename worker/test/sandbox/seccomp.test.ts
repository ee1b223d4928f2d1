import t from 'tap'
import { existsSync, readFileSync, rmSync, statSync } from 'node:fs'
import { dirname } from 'node:path'
import { execa } from 'execa'
import { findPython } from '@autoresearch-grid/trainer'
import {
  AUDIT_ARCH, CLONE_NAMESPACES, ENOSYS, EPERM, REFUSED, SECCOMP_RET, SYSCALLS, seccompArch, seccompProgram, seccompVerdict,
  type SeccompArch, type SeccompProfile,
} from '../../src/sandbox/seccomp.ts'
import { detectSandbox } from '../../src/sandbox/detect.ts'
import { ensureSeccompFiles, writeSeccompFiles } from '../../src/sandbox/host.ts'
import { bwrapCommand, INSIDE, type HostLayout } from '../../src/sandbox/bwrap.ts'

// The sandbox's seccomp filter (src/sandbox/seccomp.ts): first what the program decides, through a
// classic-BPF interpreter, for both architectures and profiles; then the real thing, bwrap and the
// kernel running it, on this machine.

const ARCHES: SeccompArch[] = ['x86_64', 'aarch64']
const errno = (e: number) => SECCOMP_RET.ERRNO | e
// Calls every honest run makes, by arch: read, write, openat, mmap, futex, getpid, ioctl (the GPU's).
const EVERYDAY: Record<SeccompArch, Record<string, number>> = {
  x86_64: { read: 0, write: 1, mmap: 9, ioctl: 16, getpid: 39, futex: 202, openat: 257 },
  aarch64: { read: 63, write: 64, mmap: 222, ioctl: 29, getpid: 172, futex: 98, openat: 56 },
}
// glibc's pthread_create (clone's flags for a thread) and fork's.
const THREAD_FLAGS = 0x3d0f00
const FORK_FLAGS = 0x01200011

t.test('the program: what it lets through and what it refuses', async t => {
  for (const arch of ARCHES) {
    for (const profile of ['run', 'model-server'] as SeccompProfile[]) {
      const p = seccompProgram(arch, profile)
      const decide = (nr: number, args: number[] = []) => seccompVerdict(p, { arch: AUDIT_ARCH[arch], nr, args })
      const nr = (name: string) => SYSCALLS[name][arch]!
      for (const [name, n] of Object.entries(EVERYDAY[arch])) t.equal(decide(n), SECCOMP_RET.ALLOW, `${arch} ${profile}: ${name} allowed`)
      for (const name of REFUSED) {
        if (SYSCALLS[name][arch] !== null) t.equal(decide(nr(name)), errno(EPERM), `${arch} ${profile}: ${name} refused`)
      }
      t.equal(decide(nr('clone'), [THREAD_FLAGS]), SECCOMP_RET.ALLOW, `${arch} ${profile}: a thread`)
      t.equal(decide(nr('clone'), [FORK_FLAGS]), SECCOMP_RET.ALLOW, `${arch} ${profile}: a fork`)
      for (let bit = 0; bit < 32; bit++) {
        const flag = 2 ** bit
        if (CLONE_NAMESPACES & flag) t.equal(decide(nr('clone'), [FORK_FLAGS | flag]), errno(EPERM), `${arch} ${profile}: clone with namespace flag 0x${flag.toString(16)}`)
      }
      t.equal(decide(nr('clone3')), errno(ENOSYS), `${arch} ${profile}: clone3 answers ENOSYS (glibc falls back to clone)`)
      // Another calling convention is killed whatever the call.
      t.equal(seccompVerdict(p, { arch: 0x40000003, nr: 20 }), SECCOMP_RET.KILL_PROCESS, `${arch} ${profile}: i386 calls killed`)
      if (arch === 'x86_64') t.equal(decide(0x40000000 + 39), errno(EPERM), `${profile}: x32 getpid refused`)
      const locks = profile === 'model-server'
      t.equal(decide(nr('flock')), locks ? errno(0) : SECCOMP_RET.ALLOW, `${arch} ${profile}: flock ${locks ? 'faked' : 'allowed'}`)
      for (const cmd of [6, 7, 37, 38]) t.equal(decide(nr('fcntl'), [3, cmd]), locks ? errno(0) : SECCOMP_RET.ALLOW, `${arch} ${profile}: fcntl set-lock ${cmd}`)
      for (const cmd of [5, 36]) t.equal(decide(nr('fcntl'), [3, cmd]), locks ? errno(EPERM) : SECCOMP_RET.ALLOW, `${arch} ${profile}: fcntl lock query ${cmd}`)
      for (const cmd of [1, 2, 3, 4]) t.equal(decide(nr('fcntl'), [3, cmd]), SECCOMP_RET.ALLOW, `${arch} ${profile}: fcntl F_GETFD..F_SETFL ${cmd}`)
    }
  }
  t.equal(seccompArch('x64'), 'x86_64')
  t.equal(seccompArch('arm64'), 'aarch64')
  t.equal(seccompArch('ppc64'), null, 'no table, no filter (and the worker says so)')
})

// The numbers were typed from the kernel's tables: checked against the headers where this machine has them.
const HEADERS: Record<SeccompArch, string> = { x86_64: '/usr/include/x86_64-linux-gnu/asm/unistd_64.h', aarch64: '/usr/include/asm-generic/unistd.h' }
for (const arch of ARCHES) {
  t.test(`the ${arch} numbers match ${HEADERS[arch]}`, { skip: existsSync(HEADERS[arch]) ? false : `no ${HEADERS[arch]} here (linux-libc-dev)` }, async t => {
    const text = readFileSync(HEADERS[arch], 'utf8')
    const defined = new Map<string, number>()
    for (const m of text.matchAll(/^#define __NR(?:3264)?_(\w+)\s+(\d+)/gm)) defined.set(m[1], Number(m[2]))
    for (const [name, numbers] of Object.entries(SYSCALLS)) t.equal(numbers[arch], defined.get(name) ?? null, `${name}`)
  })
}

const python = await findPython().catch(() => null)
const found = python ? await detectSandbox(python.path) : null
const host: HostLayout | null = found?.ok ? found.host : null

/** The command that runs Python in a real sandbox of this machine, with the profile's filter or none. */
function sandboxed(code: string, filter: SeccompProfile | 'none'): string[] {
  const { seccomp, ...bare } = host!
  const layout = filter === 'none' ? bare : { ...bare, seccomp }
  return bwrapCommand(layout, { mounts: [], env: { PATH: '/usr/bin:/bin' }, cwd: INSIDE.home, command: [python!.path, '-I', '-c', code], seccomp: filter === 'none' ? undefined : filter })
}

async function inSandbox(code: string, filter: SeccompProfile | 'none'): Promise<string> {
  const cmd = sandboxed(code, filter)
  const r = await execa(cmd[0], cmd.slice(1), { reject: false, stdin: 'ignore', timeout: 120_000 })
  if (r.exitCode !== 0) throw new Error(`the sandbox failed (${r.exitCode}): ${r.stderr}`)
  return String(r.stdout)
}

const SURFACE = `
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
def call(name, *a):
    r = libc.syscall(*a)
    print(name, "ok" if r >= 0 else os.strerror(ctypes.get_errno()))
NR = {"x86_64": (272, 425, 294), "aarch64": (97, 425, 26)}[os.uname().machine]
call("unshare(CLONE_NEWUSER)", NR[0], 0x10000000)
call("io_uring_setup", NR[1], 1, ctypes.create_string_buffer(120))
call("inotify_init1", NR[2], 0)
`

t.test('in a real sandbox the filter refuses what it says, and everything else still works', { skip: host?.seccomp ? false : `no sandbox with a filter here: ${found && !found.ok ? found.problem : 'no Python or no table for this arch'}` }, async t => {
  t.match(found!.ok && found!.how, /seccomp filter/, 'the worker says it has one')
  const without = await inSandbox(SURFACE, 'none')
  // Without the filter these calls reach the kernel (what the filter is for): a nested user
  // namespace in the sandbox, an io_uring, an inotify instance.
  t.match(without, /unshare\(CLONE_NEWUSER\) ok/, 'without the filter: a nested user namespace')
  t.match(without, /inotify_init1 ok/, 'without the filter: inotify')
  for (const profile of ['run', 'model-server'] as const) {
    const out = await inSandbox(SURFACE + `
import subprocess, threading
t = threading.Thread(target=lambda: print("thread ran")); t.start(); t.join()
print("child:", subprocess.run(["/bin/echo", "ran"], capture_output=True, text=True).stdout.strip())
print("fds", sorted(int(f) for f in os.listdir("/proc/self/fd")))
import torch
print("torch", torch.ones(3).sum().item())
`, profile)
    t.match(out, /unshare\(CLONE_NEWUSER\) Operation not permitted/, `${profile}: no nested user namespace`)
    t.match(out, /io_uring_setup Operation not permitted/, `${profile}: no io_uring`)
    t.match(out, /inotify_init1 Operation not permitted/, `${profile}: no inotify`)
    t.match(out, /thread ran/, `${profile}: threads start (clone3 → clone)`)
    t.match(out, /child: ran/, `${profile}: processes start`)
    t.match(out, /torch 3\.0/, `${profile}: torch imports and computes`)
    t.notMatch(out, /fds \[.*\b9\b.*\]/, `${profile}: the program's descriptor does not reach inside`)
  }
})

// Two model servers alive at once must not hear each other through a lock on a file both read
// (docs/SECURITY.md, "A third process could relay between the model servers"): under the model
// servers' profile a lock is taken by no one, so the second sandbox finds nothing held.
const HOLD = `
import fcntl, sys
f = open("/usr/bin/env")
fcntl.flock(f, fcntl.LOCK_EX)
print("held", flush=True)
sys.stdin.read()  # until the test closes it
`
const PROBE = `
import fcntl
f = open("/usr/bin/env")
try:
    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    print("free")
except BlockingIOError:
    print("held by another")
`
t.test('a lock in one model server is not seen from another', { skip: host?.seccomp && existsSync('/usr/bin/env') ? false : 'no sandbox with a filter here' }, async t => {
  const pair = async (filter: SeccompProfile | 'none') => {
    const cmd = sandboxed(HOLD, filter)
    const holder = execa(cmd[0], cmd.slice(1), { reject: false, stdin: 'pipe', timeout: 120_000 })
    // The probe starts once the holder says it holds the lock: no timing.
    await new Promise<void>((resolve, reject) => {
      let out = ''
      holder.stdout!.on('data', (b: Buffer) => { out += b.toString(); if (out.includes('held')) resolve() })
      void holder.then(r => reject(new Error(`the holder ended first (${r.exitCode}): ${r.stderr}`)))
    })
    const probe = await inSandbox(PROBE, filter)
    holder.stdin!.end()
    await holder
    return probe.trim()
  }
  t.equal(await pair('none'), 'held by another', 'without the filter the lock is a channel between sandboxes')
  t.equal(await pair('run'), 'held by another', 'training keeps real locks (inductor\'s and triton\'s caches between processes)')
  t.equal(await pair('model-server'), 'free', 'between model servers it carries nothing')
})

// A temp cleaner may remove the program files of a worker idle for days: the next sandbox writes
// them again, into a fresh private folder, never into the old path (anyone may have made it since).
t.test('program files removed under a running worker are written again before the next sandbox', { skip: seccompArch() ? false : 'no table for this arch' }, async t => {
  const files = writeSeccompFiles()!
  const layout = { seccomp: { ...files } } as HostLayout
  rmSync(dirname(files.run), { recursive: true, force: true })
  ensureSeccompFiles(layout)
  for (const profile of ['run', 'model-server'] as const) {
    t.not(layout.seccomp![profile], files[profile], `${profile}: a new path`)
    t.same(readFileSync(layout.seccomp![profile]), seccompProgram(seccompArch()!, profile), `${profile}: the program`)
  }
  t.equal(statSync(dirname(layout.seccomp!.run)).mode & 0o777, 0o700, 'in a folder only the worker can enter')
  const again = { ...layout.seccomp! }
  ensureSeccompFiles(layout)
  t.same(layout.seccomp, again, 'left as they are while they exist')
})

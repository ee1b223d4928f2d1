/**
 * The seccomp filter every sandbox runs under (bwrap `--seccomp`): a classic BPF program, built here
 * because the volunteer's machine has no libseccomp to ask. Pure: arch and profile in, bytes out.
 *
 * What it refuses (EPERM), in every sandbox: the kernel's rarely needed and often exploited
 * interfaces that container runtimes refuse too (Docker's default profile): new namespaces (`unshare`,
 * `setns`, `clone` with a namespace flag; `clone3`, whose flags sit behind a pointer a filter cannot
 * read, answers ENOSYS so that glibc falls back to `clone`), mounts, `bpf`, `perf_event_open`,
 * `io_uring`, `userfaultfd`, `ptrace` and `process_vm_*`, keyrings, kernel modules, kexec, clocks,
 * swap, reboot; and inotify/fanotify, which would let two sandboxes alive at once see each other
 * open and read the files both are given (docs/SECURITY.md, "A third process could relay"). Any
 * other architecture's calling convention (i386 on x86_64) kills the process; x32 calls are refused.
 *
 * The model servers' profile (`model-server`) also takes file locks away: `flock` and fcntl's
 * set-lock commands succeed without locking anything, and its lock queries are refused, so a lock
 * on a file another sandbox reads (the run folder, /usr) carries nothing between them. A lock
 * faked so is harmless to one process: inductor's and triton's caches take locks to keep apart
 * compilers of different processes, and a model server is one.
 */

export type SeccompProfile = 'run' | 'model-server'
export type SeccompArch = 'x86_64' | 'aarch64'

/** `process.arch` → the filter's architecture; null where no table is written (no filter there). */
export function seccompArch(nodeArch: string = process.arch): SeccompArch | null {
  return nodeArch === 'x64' ? 'x86_64' : nodeArch === 'arm64' ? 'aarch64' : null
}

/** AUDIT_ARCH_* of <linux/audit.h>: what seccomp_data.arch holds for each calling convention. */
export const AUDIT_ARCH: Record<SeccompArch, number> = { x86_64: 0xc000003e, aarch64: 0xc00000b7 }
/** x32 calls on x86_64 carry this bit in their number. */
const X32_BIT = 0x40000000

type Numbers = Record<string, Record<SeccompArch, number | null>>

/**
 * Refused in every sandbox (the file comment says why), by their numbers (<asm/unistd_64.h> on
 * x86_64; <asm-generic/unistd.h> on aarch64; null: the arch has no such call).
 */
const REFUSED_CALLS: Numbers = {
  ptrace: { x86_64: 101, aarch64: 117 },
  process_vm_readv: { x86_64: 310, aarch64: 270 },
  process_vm_writev: { x86_64: 311, aarch64: 271 },
  kcmp: { x86_64: 312, aarch64: 272 },
  syslog: { x86_64: 103, aarch64: 116 },
  acct: { x86_64: 163, aarch64: 89 },
  settimeofday: { x86_64: 164, aarch64: 170 },
  clock_settime: { x86_64: 227, aarch64: 112 },
  clock_adjtime: { x86_64: 305, aarch64: 266 },
  adjtimex: { x86_64: 159, aarch64: 171 },
  mount: { x86_64: 165, aarch64: 40 },
  umount2: { x86_64: 166, aarch64: 39 },
  pivot_root: { x86_64: 155, aarch64: 41 },
  chroot: { x86_64: 161, aarch64: 51 },
  open_tree: { x86_64: 428, aarch64: 428 },
  move_mount: { x86_64: 429, aarch64: 429 },
  fsopen: { x86_64: 430, aarch64: 430 },
  fsconfig: { x86_64: 431, aarch64: 431 },
  fsmount: { x86_64: 432, aarch64: 432 },
  fspick: { x86_64: 433, aarch64: 433 },
  mount_setattr: { x86_64: 442, aarch64: 442 },
  unshare: { x86_64: 272, aarch64: 97 },
  setns: { x86_64: 308, aarch64: 268 },
  swapon: { x86_64: 167, aarch64: 224 },
  swapoff: { x86_64: 168, aarch64: 225 },
  reboot: { x86_64: 169, aarch64: 142 },
  sethostname: { x86_64: 170, aarch64: 161 },
  setdomainname: { x86_64: 171, aarch64: 162 },
  vhangup: { x86_64: 153, aarch64: 58 },
  iopl: { x86_64: 172, aarch64: null },
  ioperm: { x86_64: 173, aarch64: null },
  create_module: { x86_64: 174, aarch64: null },
  init_module: { x86_64: 175, aarch64: 105 },
  finit_module: { x86_64: 313, aarch64: 273 },
  delete_module: { x86_64: 176, aarch64: 106 },
  get_kernel_syms: { x86_64: 177, aarch64: null },
  query_module: { x86_64: 178, aarch64: null },
  kexec_load: { x86_64: 246, aarch64: 104 },
  kexec_file_load: { x86_64: 320, aarch64: 294 },
  quotactl: { x86_64: 179, aarch64: 60 },
  quotactl_fd: { x86_64: 443, aarch64: 443 },
  nfsservctl: { x86_64: 180, aarch64: 42 },
  uselib: { x86_64: 134, aarch64: null },
  ustat: { x86_64: 136, aarch64: null },
  sysfs: { x86_64: 139, aarch64: null },
  _sysctl: { x86_64: 156, aarch64: null },
  lookup_dcookie: { x86_64: 212, aarch64: 18 },
  add_key: { x86_64: 248, aarch64: 217 },
  request_key: { x86_64: 249, aarch64: 218 },
  keyctl: { x86_64: 250, aarch64: 219 },
  bpf: { x86_64: 321, aarch64: 280 },
  perf_event_open: { x86_64: 298, aarch64: 241 },
  userfaultfd: { x86_64: 323, aarch64: 282 },
  io_uring_setup: { x86_64: 425, aarch64: 425 },
  io_uring_enter: { x86_64: 426, aarch64: 426 },
  io_uring_register: { x86_64: 427, aarch64: 427 },
  name_to_handle_at: { x86_64: 303, aarch64: 264 },
  open_by_handle_at: { x86_64: 304, aarch64: 265 },
  fanotify_init: { x86_64: 300, aarch64: 262 },
  inotify_init: { x86_64: 253, aarch64: null },
  inotify_init1: { x86_64: 294, aarch64: 26 },
}

/** Judged by their arguments (seccompProgram), not refused whole. */
const JUDGED_CALLS: Numbers = {
  clone: { x86_64: 56, aarch64: 220 },
  clone3: { x86_64: 435, aarch64: 435 },
  flock: { x86_64: 73, aarch64: 32 },
  fcntl: { x86_64: 72, aarch64: 25 },
}

export const SYSCALLS: Numbers = { ...REFUSED_CALLS, ...JUDGED_CALLS }
export const REFUSED = Object.keys(REFUSED_CALLS)

/** CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET. */
export const CLONE_NAMESPACES = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000
/** fcntl commands: F_GETLK, F_SETLK, F_SETLKW, F_OFD_GETLK, F_OFD_SETLK, F_OFD_SETLKW (the 64-bit ABIs' numbers). */
export const FCNTL_LOCK_QUERIES = [5, 36]
export const FCNTL_LOCK_SETS = [6, 7, 37, 38]

export const SECCOMP_RET = { KILL_PROCESS: 0x80000000, ERRNO: 0x00050000, ALLOW: 0x7fff0000 } as const
export const EPERM = 1
export const ENOSYS = 38

/** seccomp_data: nr at 0, arch at 4, args[i] at 16 + 8i (the low 32 bits first: both arches are little-endian). */
const NR = 0
const ARCH = 4
const argLow = (i: number) => 16 + 8 * i

// Classic BPF opcodes.
const LD_W_ABS = 0x20
const JEQ = 0x15
const JGE = 0x35
const JSET = 0x45
const RET = 0x06

type Label = 'eperm' | 'enosys' | 'fake' | 'kill' | 'clone' | 'fcntl'
/** One instruction; a jump names its targets, resolved to offsets once the program is laid out. */
interface Insn { code: number; k: number; jt?: Label | number; jf?: Label | number; label?: Label }

const ld = (offset: number): Insn => ({ code: LD_W_ABS, k: offset })
const ret = (value: number, label?: Label): Insn => ({ code: RET, k: value, label })
const jump = (code: number, k: number, jt: Label, jf: Label | number = 0): Insn => ({ code, k, jt, jf })

/** The filter for one architecture and profile, as bwrap's `--seccomp` reads it: struct sock_filter[]. */
export function seccompProgram(arch: SeccompArch, profile: SeccompProfile): Buffer {
  const nr = (name: string) => SYSCALLS[name][arch]
  // Another calling convention (i386's int 0x80 on x86_64) numbers its calls differently: killed.
  const program: Insn[] = [ld(ARCH), { code: JEQ, k: AUDIT_ARCH[arch], jt: 0, jf: 'kill' }, ld(NR)]
  if (arch === 'x86_64') program.push(jump(JGE, X32_BIT, 'eperm'))
  for (const name of REFUSED) {
    const n = nr(name)
    if (n !== null) program.push(jump(JEQ, n, 'eperm'))
  }
  program.push(jump(JEQ, nr('clone')!, 'clone'), jump(JEQ, nr('clone3')!, 'enosys'))
  if (profile === 'model-server') program.push(jump(JEQ, nr('flock')!, 'fake'), jump(JEQ, nr('fcntl')!, 'fcntl'))
  program.push(ret(SECCOMP_RET.ALLOW))
  // Only the low 32 bits of clone's flags reach the kernel (kernel_clone_args takes lower_32_bits).
  program.push({ ...ld(argLow(0)), label: 'clone' }, jump(JSET, CLONE_NAMESPACES, 'eperm'), ret(SECCOMP_RET.ALLOW))
  if (profile === 'model-server') {
    program.push({ ...ld(argLow(1)), label: 'fcntl' })
    for (const cmd of FCNTL_LOCK_QUERIES) program.push(jump(JEQ, cmd, 'eperm'))
    for (const cmd of FCNTL_LOCK_SETS) program.push(jump(JEQ, cmd, 'fake'))
    program.push(ret(SECCOMP_RET.ALLOW))
  }
  // The shared answers last: classic BPF jumps forward only. ERRNO with 0 returns 0 without running the call.
  program.push(ret(SECCOMP_RET.ERRNO | EPERM, 'eperm'), ret(SECCOMP_RET.ERRNO | ENOSYS, 'enosys'), ret(SECCOMP_RET.KILL_PROCESS, 'kill'))
  if (profile === 'model-server') program.push(ret(SECCOMP_RET.ERRNO | 0, 'fake'))
  return assemble(program)
}

function assemble(program: Insn[]): Buffer {
  const at = new Map<Label, number>()
  program.forEach((insn, i) => { if (insn.label) at.set(insn.label, i) })
  const out = Buffer.alloc(program.length * 8)
  program.forEach((insn, i) => {
    const offset = (target: Label | number | undefined): number => {
      if (target === undefined) return 0
      if (typeof target === 'number') return target
      const d = at.get(target)! - i - 1
      if (!(d >= 0 && d <= 255)) throw new Error(`seccomp program: jump from ${i} to ${target} out of reach`)
      return d
    }
    out.writeUInt16LE(insn.code, i * 8)
    out.writeUInt8(offset(insn.jt), i * 8 + 2)
    out.writeUInt8(offset(insn.jf), i * 8 + 3)
    out.writeUInt32LE(insn.k >>> 0, i * 8 + 4)
  })
  return out
}

/** What the kernel would do with one call: a classic BPF interpreter for this file's programs (the tests read them with it). */
export function seccompVerdict(program: Buffer, call: { arch: number; nr: number; args?: number[] }): number {
  const data = Buffer.alloc(64)
  data.writeInt32LE(call.nr, NR)
  data.writeUInt32LE(call.arch >>> 0, ARCH)
  ;(call.args ?? []).forEach((a, i) => data.writeUInt32LE(a >>> 0, argLow(i)))
  let acc = 0
  for (let pc = 0; pc < program.length / 8;) {
    const code = program.readUInt16LE(pc * 8)
    const jt = program.readUInt8(pc * 8 + 2)
    const jf = program.readUInt8(pc * 8 + 3)
    const k = program.readUInt32LE(pc * 8 + 4)
    pc++
    if (code === LD_W_ABS) acc = data.readUInt32LE(k)
    else if (code === RET) return k
    else if (code === JEQ) pc += acc === k ? jt : jf
    else if (code === JGE) pc += acc >= k ? jt : jf
    else if (code === JSET) pc += (acc & k) !== 0 ? jt : jf
    else throw new Error(`seccomp program: unknown opcode ${code}`)
  }
  throw new Error('seccomp program: fell off its end')
}

import { chmodSync, existsSync, lstatSync, mkdtempSync, readdirSync, readlinkSync, realpathSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { delimiter, dirname, isAbsolute, join } from 'node:path'
import { execa } from 'execa'
import type { HostLayout } from './bwrap.ts'
import { sandboxLimits } from './limits.ts'
import { seccompArch, seccompProgram, type SeccompProfile } from './seccomp.ts'

/** Top-level folders that are symlinks into /usr on merged-usr systems, real folders elsewhere. */
const ROOT_ENTRIES = ['/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32']

/**
 * Of /etc only what the dynamic loader and Debian's alternatives need (torch finds its BLAS through
 * /etc/alternatives): no passwd, no ssh, no credentials.
 */
const ETC = ['/etc/ld.so.cache', '/etc/ld.so.conf', '/etc/ld.so.conf.d', '/etc/alternatives', '/etc/localtime']

/** Under /proc: read-only, and hidden (as Docker's default profile masks them). */
const PROC_READ_ONLY = ['/proc/sys', '/proc/sysrq-trigger', '/proc/fs', '/proc/bus', '/proc/irq']
const PROC_HIDDEN = ['/proc/kcore', '/proc/keys', '/proc/timer_list', '/proc/kallsyms',
  // Every file lock on the machine, with its inode: a sandbox could watch another's locks through it
  // (seccomp.ts takes locks from the model servers; this takes the watching from everyone).
  '/proc/locks']

/** CUDA and ROCm device nodes, and where GPU containers keep the driver's user-space libraries. */
const GPU_NODE = /^(nvidia\d*|nvidiactl|nvidia-uvm|nvidia-uvm-tools|nvidia-modeset|nvidia-caps|kfd|dri)$/
const GPU_LIBS = ['/usr/local/nvidia', '/usr/local/cuda', '/opt/rocm']

/** Asks the Python where it lives: prefixes, site-packages, torch; all read-only inside. */
const PYTHON_PATHS = `
import importlib.util, json, os, site, sys
paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix, os.path.dirname(os.path.realpath(sys.executable))}
paths.update(p for p in site.getsitepackages() + [site.getusersitepackages()] if os.path.isdir(p))
paths.update(p for p in sys.path if p and os.path.isdir(p))
spec = importlib.util.find_spec("torch")  # where torch is, without importing it (~1.5 s of CPU)
if spec and spec.origin:
    paths.add(os.path.dirname(os.path.dirname(os.path.realpath(spec.origin))))
print(json.dumps(sorted(paths)))
`

const inside = (path: string, dir: string) => path === dir || path.startsWith(`${dir}/`)

/**
 * Folders that are mounted already, or that must never be mounted whole: `/`, and any folder that
 * holds one of the private ones (HOME, the worker's state) — `/home` would bring `~/.ssh` along.
 */
function coveredOrRefused(path: string, covered: readonly string[], privateDirs: readonly string[]): boolean {
  if (path === '/') return true
  if (privateDirs.some(d => inside(d, path))) return true
  return covered.some(c => inside(path, c))
}

/**
 * Reduces a set of absolute folders to the smallest set that covers it (no folder inside another),
 * leaving out those inside /usr (already mounted) and refusing `/` and any folder that contains a
 * private one (HOME, the worker's state). Relative paths are dropped: they would mean whatever the
 * worker's current folder is.
 */
export function minimalCover(paths: readonly string[], covered: readonly string[], privateDirs: readonly string[] = []): string[] {
  const sorted = [...new Set(paths.filter(p => isAbsolute(p) && existsSync(p)))].sort()
  const out: string[] = []
  for (const p of sorted) {
    if (coveredOrRefused(p, [...covered, ...out], privateDirs)) continue
    out.push(p)
  }
  return out
}

export async function pythonPaths(python: string): Promise<string[]> {
  const r = await execa(python, ['-I', '-c', PYTHON_PATHS], { reject: false, stdin: 'ignore', timeout: 300_000 }) // a hang guard: importing torch took over 60 s at load 30
  if (r.exitCode !== 0) throw new Error(`cannot ask ${python} where it lives: ${String(r.stderr).trim().split('\n').pop()}`)
  const listed = JSON.parse(String(r.stdout).trim().split('\n').pop() ?? '[]') as string[]
  // A venv's python is a symlink to the base interpreter: both the link and its target must be inside.
  const exe = existsSync(python) ? [dirname(python), dirname(realpathSync(python))] : []
  const fromEnv = (process.env.LD_LIBRARY_PATH ?? '').split(delimiter).filter(p => isAbsolute(p))
  return [...listed, ...exe, ...fromEnv, ...GPU_LIBS].filter(p => isAbsolute(p)).map(p => (existsSync(p) ? realpathSync(p) : p))
}

export function gpuDevices(dev = '/dev'): string[] {
  try {
    return readdirSync(dev).filter(n => GPU_NODE.test(n)).map(n => `${dev}/${n}`).sort()
  } catch {
    return []
  }
}

/**
 * The seccomp programs of this machine's architecture as read-only files in a private folder
 * (mkdtemp: 0700, ours), written once a process (again if something removed them) and removed when
 * it exits; null where seccomp.ts has no table.
 */
export function writeSeccompFiles(arch = seccompArch()): Record<SeccompProfile, string> | null {
  if (!arch) return null
  const known = seccompFiles.get(arch)
  if (known && Object.values(known).every(f => existsSync(f))) return known
  const dir = mkdtempSync(join(tmpdir(), 'arg-seccomp-'))
  if (seccompFiles.size === 0) process.once('exit', () => { for (const f of seccompFiles.values()) rmSync(dirname(f.run), { recursive: true, force: true }) })
  const files = {} as Record<SeccompProfile, string>
  for (const profile of ['run', 'model-server'] as const) {
    files[profile] = join(dir, `${profile}.bpf`)
    writeFileSync(files[profile], seccompProgram(arch, profile))
    chmodSync(files[profile], 0o444)
  }
  seccompFiles.set(arch, files)
  return files
}
const seccompFiles = new Map<string, Record<SeccompProfile, string>>()

/**
 * Before a sandbox starts: the host's program files are there, or written again into a fresh
 * private folder (a temp cleaner removes files of a worker idle for days). Never into the old
 * folder's path, which anyone may have made again meanwhile.
 */
export function ensureSeccompFiles(host: HostLayout): void {
  if (!host.seccomp || Object.values(host.seccomp).every(f => existsSync(f))) return
  const fresh = writeSeccompFiles()
  if (fresh) Object.assign(host.seccomp, fresh)
}

/**
 * What the sandbox needs to know about this machine; `python` is the trainer's interpreter.
 * `privateDirs` (the worker's state) are never mounted, nor any folder that holds them.
 */
export async function probeHost(bwrap: string, python: string, privateDirs: readonly string[] = []): Promise<HostLayout> {
  const rootEntries = ROOT_ENTRIES.filter(p => existsSync(p)).map(path => {
    const st = lstatSync(path)
    return { path, symlink: st.isSymbolicLink() ? readlinkSync(path) : null }
  })
  const system = ['/usr', ...ETC, '/sys'].filter(p => existsSync(p))
  const covered = ['/usr', ...rootEntries.filter(e => e.symlink === null).map(e => e.path)]
  const home = process.env.HOME && existsSync(process.env.HOME) ? [realpathSync(process.env.HOME)] : []
  const refused = [...home, ...privateDirs.filter(d => existsSync(d)).map(d => realpathSync(d))]
  const seccomp = writeSeccompFiles()
  return {
    bwrap,
    rootEntries,
    system,
    python: minimalCover(await pythonPaths(python), covered, refused),
    devices: gpuDevices(),
    procReadOnly: PROC_READ_ONLY.filter(p => existsSync(p)),
    procHidden: PROC_HIDDEN.filter(p => existsSync(p)),
    ...(seccomp ? { seccomp } : {}),
    limits: sandboxLimits(python),
    uid: 65534,
    gid: 65534,
  }
}

import { access, copyFile, cp, link, lstat, mkdir, open, readdir, readlink, rename, stat, symlink, unlink, utimes, writeFile, type FileHandle } from 'node:fs/promises'
import { constants, existsSync } from 'node:fs'
import { createHash } from 'node:crypto'
import { join } from 'node:path'
import { execa } from 'execa'
import { removeTree } from './remove-tree.ts'

/**
 * Compile caches without letting one run change what a later run of different code executes
 * (docs/SECURITY.md, "Caches"). torch.compile's caches (inductor, triton) hold generated code that
 * a later run loads and runs; a run that could write them could plant code for the next one.
 *
 * - Each source (by its hash) gets its own inductor/triton folder, the only cache a run may write.
 *   A later run of the *same* source reuses it (a verification, a repeat baseline): that code could
 *   have done anything to itself anyway. A run of other code never sees it.
 * - A new source's folder starts as a copy of `trusted/`, so an edit that leaves the model's graph
 *   alone (a learning rate, a schedule) still starts warm: the entries it needs are there.
 * - Only runs of trusted code fill `trusted/`: a baseline of the campaign's best, which was reviewed
 *   and reproduced by other contributors before it merged. Its new entries are copied in after it
 *   ran. A candidate's entries never are.
 * - torch's own bytecode (PYTHONPYCACHEPREFIX) is compiled by the worker itself, outside any
 *   sandbox, from the installed torch; sandboxes see it read-only.
 * - What a run writes after go (once it has its training data) is not kept (`cacheForRun`): the
 *   next run of the same source would find it in its untimed start-up, and a run could stash what
 *   it learned there (its weights) and train on past its budget in the next one.
 */

const KEEP_SOURCES = 8

const root = (cacheDir: string) => join(cacheDir, 'compile')
export const trustedDir = (cacheDir: string) => join(root(cacheDir), 'trusted')
export const bytecodeDir = (cacheDir: string) => join(root(cacheDir), 'pycache')
const sourceDir = (cacheDir: string, sourceHash: string) => join(root(cacheDir), 'by-source', sourceHash.slice(0, 24))

/** The writable cache folder for runs of this source (inductor/ and triton/ inside), made on first use. */
export async function cacheForSource(cacheDir: string, sourceHash: string): Promise<string> {
  const dir = sourceDir(cacheDir, sourceHash)
  if (existsSync(dir)) {
    const now = new Date()
    await utimes(dir, now, now)
    return dir
  }
  const fresh = `${dir}.tmp${process.pid}`
  await removeTree(fresh)
  await mkdir(fresh, { recursive: true })
  if (existsSync(trustedDir(cacheDir))) await cp(trustedDir(cacheDir), fresh, { recursive: true })
  for (const sub of ['inductor', 'triton']) await mkdir(join(fresh, sub), { recursive: true })
  try {
    await rename(fresh, dir)
  } catch {
    await removeTree(fresh) // another lane made it first: use theirs
  }
  await evictOldSources(cacheDir)
  return dir
}

/** Keeps the most recently used source folders; the rest are deleted. */
async function evictOldSources(cacheDir: string): Promise<void> {
  const base = join(root(cacheDir), 'by-source')
  const names = (await readdir(base).catch(() => [] as string[])).filter(n => !n.includes('.tmp'))
  if (names.length <= KEEP_SOURCES) return
  // Another run on this cache may evict at the same time: a folder gone meanwhile is simply left out.
  const found = await Promise.all(names.map(async n => ({ n, t: (await stat(join(base, n)).catch(() => null))?.mtimeMs })))
  const aged = found.filter((a): a is { n: string; t: number } => a.t !== undefined)
  aged.sort((a, b) => b.t - a.t)
  for (const { n } of aged.slice(KEEP_SOURCES)) await removeTree(join(base, n))
}

/** After a run of trusted code: its new cache entries join `trusted/` (existing ones are kept). */
export async function promoteToTrusted(cacheDir: string, sourceHash: string): Promise<void> {
  const dir = sourceDir(cacheDir, sourceHash)
  if (!existsSync(dir)) return
  await mkdir(trustedDir(cacheDir), { recursive: true })
  // What the worker cannot read (a start-up may chmod its files to 000) is left out: copied, it threw,
  // and the baseline that had run was never reported. A link is copied as a link, never followed.
  const readable = (src: string) => lstat(src).then(st => st.isSymbolicLink() || access(src, constants.R_OK).then(() => true), () => false).catch(() => false)
  await cp(dir, trustedDir(cacheDir), { recursive: true, force: false, errorOnExist: false, filter: readable })
}

/**
 * Imports what a training run imports (torch, its compiler stack, triton, sympy, numpy), then
 * compiles every package those imports came from, and the standard library: lazily imported
 * modules (the compiler's code generators) are covered too. Only installed code is compiled.
 */
const PRECOMPILE = `
import compileall, importlib, os, sys, sysconfig
import torch, numpy
for name in ("torch._dynamo", "torch._inductor.compile_fx", "torch._inductor.codecache", "torch.nn.attention.flex_attention", "triton", "sympy"):
    try:
        importlib.import_module(name)
    except Exception:
        pass
roots = {sysconfig.get_paths()["stdlib"]}
for m in list(sys.modules.values()):
    f = getattr(m, "__file__", None) or ""
    for site in sys.path:
        if site and "-packages" in site and f.startswith(site + os.sep):
            top = f[len(site) + 1:].split(os.sep)[0]
            roots.add(os.path.join(site, top))
for root in sorted(roots):
    if os.path.isdir(root):
        compileall.compile_dir(root, quiet=2, workers=0)
    elif root.endswith(".py") and os.path.isfile(root):
        compileall.compile_file(root, quiet=2)
`

/**
 * torch's bytecode, compiled once by the worker (trusted) into the prefix the sandboxes read: a
 * torch installed without .pyc files (uv's default) in a folder the trainer may not write would
 * otherwise be compiled from source at every start (10 s on an H100 box, docs/TRAINER.md).
 */
export async function compileBytecode(python: string, cacheDir: string): Promise<string> {
  const dir = bytecodeDir(cacheDir)
  const marker = join(dir, `.compiled-${createHash('sha256').update(python).digest('hex').slice(0, 12)}`)
  if (existsSync(marker)) return dir
  await mkdir(dir, { recursive: true })
  const script = PRECOMPILE
  // -I ignores PYTHONPYCACHEPREFIX: the prefix goes on the command line.
  await execa(python, ['-I', '-X', `pycache_prefix=${dir}`, '-c', script], { reject: false, stdin: 'ignore', timeout: 900_000 })
  await writeFile(marker, `${new Date().toISOString()}\n`)
  return dir
}

/** Deeper than any compile cache (inductor's and triton's entries lie 3 to 5 folders down). */
const MAX_CACHE_DEPTH = 12

/**
 * What the tree doing under a walk looks like: a name gone, or now a link, a file or a folder; or
 * made unreadable (mode 000: the sandbox's user is the worker's own outside, so a run may chmod
 * what it made). Left out: a worker that is not root threw on such a folder at go, and every later
 * run of the source threw before it started, never reported.
 */
const UNREADABLE = new Set(['EACCES', 'EPERM'])
const CHANGED = new Set(['ENOENT', 'ELOOP', 'ENOTDIR', 'EISDIR', 'EINVAL', ...UNREADABLE])
const codeOf = (err: unknown) => (err as NodeJS.ErrnoException).code ?? ''
const changedUnder = (err: unknown) => CHANGED.has(codeOf(err))

/**
 * A hard-linked copy of a folder tree: new names and folders, the same files (no data copied).
 * Folders below MAX_CACHE_DEPTH are left out: a tree deeper than a path can name is a run's doing.
 *
 * The tree may be a live sandbox's (the run's cache, frozen at go while train.py waits for its
 * data), which can swap any folder for a symlink at any moment. Walked by path, the worker looked a
 * folder's entries up through such a link, outside the sandbox: a train.py that swapped one as the
 * worker listed it (timed by the folder's atime) had the volunteer's SSH key hard-linked into its
 * source's cache, for the next run of that source to read and write (8 of 8 tries). So each folder
 * is opened once, never through a link (O_NOFOLLOW), and everything in it is reached through that
 * descriptor: /proc/self/fd/N/name, where the kernel resolves N to the folder opened and `name` is
 * never followed (lstat, link and O_NOFOLLOW opens do not). What changes under the walk is left out.
 * Linux only, as the sandbox is.
 */
async function linkTree(from: string, to: string, depth = 0): Promise<void> {
  let folder: FileHandle
  try {
    folder = await open(from, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW)
  } catch (err) {
    if (depth > 0 && changedUnder(err)) return
    if (!UNREADABLE.has(codeOf(err))) throw err
    await mkdir(to, { recursive: true }) // the cache's own folder, made unreadable: an empty copy
    return
  }
  try {
    const here = `/proc/self/fd/${folder.fd}`
    await mkdir(to, { recursive: true })
    for (const name of await readdir(here)) {
      try {
        await linkEntry(`${here}/${name}`, join(to, name), depth)
      } catch (err) {
        if (!changedUnder(err)) throw err
      }
    }
  } finally {
    await folder.close()
  }
}

async function linkEntry(src: string, dst: string, depth: number): Promise<void> {
  const st = await lstat(src)
  if (st.isDirectory()) {
    if (depth < MAX_CACHE_DEPTH) await linkTree(src, dst, depth + 1)
  } else if (st.isSymbolicLink()) await symlink(await readlink(src), dst)
  else if (st.isFile()) {
    // link(2) never follows `src`; the copy (a file system without hard links) opens it without
    // following either, and copies from the descriptor. A file with as many names as the file
    // system allows (EMLINK, 65,000 on ext4) is left out: copied, once per name, a run's one big
    // file with 64,999 names had the worker write 65,000 times its size, untimed, before go.
    await link(src, dst).catch(async (err: unknown) => {
      if (codeOf(err) === 'EMLINK') return
      const file = await open(src, constants.O_RDONLY | constants.O_NOFOLLOW)
      try {
        await copyFile(`/proc/self/fd/${file.fd}`, dst)
      } finally {
        await file.close()
      }
    })
  }
  // FIFOs, sockets, device nodes: no cache holds them; left out.
}

/** Removes every file under `dir` whose inode changed after `since` (ms since the epoch). */
async function dropChangedSince(dir: string, since: number): Promise<void> {
  for (const name of await readdir(dir)) {
    const p = join(dir, name)
    const st = await lstat(p)
    if (st.isDirectory()) await dropChangedSince(p, since)
    else if (st.ctimeMs > since) await unlink(p)
  }
}

/** One run's compile cache: the folder it mounts writable, and what becomes of it. */
export interface RunCache {
  /** A hard-linked copy of the source's cache, for this run alone. */
  dir: string
  /** At go, before the data is handed over: what the folder holds now is what start-up made. */
  atGo(): Promise<void>
  /**
   * After the run (its sandbox gone): the source's cache becomes what the run had at go; with
   * `keep` false (a run stopped past a limit of the sandbox, e.g. one that filled the disk before
   * go) nothing of it is kept, and the source's cache stays as it was.
   */
  close(keep?: boolean): Promise<void>
}

let runCaches = 0

/**
 * The compile cache of one run of a source. The run writes a hard-linked copy of the source's
 * folder; at go (the run waits for its data) that copy's names are frozen into a second hard-linked
 * copy, and after the run that frozen copy, less every file changed after go (written in place
 * through its link: the change moves the file's ctime, which no user can set), replaces the
 * source's folder. A run that never got its data keeps all it wrote. So the next run of the source
 * finds what start-ups compiled and nothing a run wrote, named or renamed with the data in hand.
 * The copies cost a link per file, no data. (A page of a shared mapping dirtied before go and
 * written again before the kernel writes it back does not move the ctime: the kernel writes dirty
 * pages back within ~35 s, so this is open only to budgets shorter than that, the cpu-tiny profile.)
 */
export async function cacheForRun(cacheDir: string, sourceHash: string): Promise<RunCache> {
  const source = await cacheForSource(cacheDir, sourceHash)
  const work = `${source}.tmp${process.pid}-run${++runCaches}`
  const frozen = `${work}-go`
  await removeTree(work)
  await linkTree(source, work)
  let since: number | null = null
  return {
    dir: work,
    async atGo() {
      await removeTree(frozen)
      await linkTree(work, frozen)
      // The links just made changed every file's ctime (its link count), and the file system may
      // stamp that to the nanosecond: `since` starts after the millisecond they fall in, or start-up's
      // own files would read as changed after go and be dropped (170 of 200 were, before).
      since = Date.now() + 1
      // The file system stamps times from a clock a tick (≤ 10 ms) behind: wait past it, so that
      // anything written once the data is there is stamped after `since`.
      await new Promise(resolve => setTimeout(resolve, 25))
    },
    async close(keep = true) {
      if (!keep) return void (await Promise.all([work, frozen].map(d => removeTree(d))))
      const kept = since === null ? work : frozen
      if (since !== null) await dropChangedSince(kept, since)
      const old = `${work}-old`
      await rename(source, old).catch(() => {})
      await rename(kept, source).catch(() => {}) // another run of this source put its own there first: theirs stays
      await Promise.all([old, work, frozen].map(d => removeTree(d)))
    },
  }
}

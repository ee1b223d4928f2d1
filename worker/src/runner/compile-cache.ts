import { cp, mkdir, readdir, rename, rm, stat, utimes, writeFile } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { createHash } from 'node:crypto'
import { join } from 'node:path'
import { execa } from 'execa'

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
  await rm(fresh, { recursive: true, force: true })
  await mkdir(fresh, { recursive: true })
  if (existsSync(trustedDir(cacheDir))) await cp(trustedDir(cacheDir), fresh, { recursive: true })
  for (const sub of ['inductor', 'triton']) await mkdir(join(fresh, sub), { recursive: true })
  try {
    await rename(fresh, dir)
  } catch {
    await rm(fresh, { recursive: true, force: true }) // another lane made it first: use theirs
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
  for (const { n } of aged.slice(KEEP_SOURCES)) await rm(join(base, n), { recursive: true, force: true })
}

/** After a run of trusted code: its new cache entries join `trusted/` (existing ones are kept). */
export async function promoteToTrusted(cacheDir: string, sourceHash: string): Promise<void> {
  const dir = sourceDir(cacheDir, sourceHash)
  if (!existsSync(dir)) return
  await mkdir(trustedDir(cacheDir), { recursive: true })
  await cp(dir, trustedDir(cacheDir), { recursive: true, force: false, errorOnExist: false })
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

// `pnpm bundle` [OUT_DIR]: the release. dist/coordinator.mjs and dist/worker.mjs run with a plain
// `node` (>= 20) from a folder with no node_modules; next to them goes every file they read at run
// time, laid out as BUNDLE_LAYOUT (shared/src/runtime-files.ts) says, which is also where the code
// looks for them when it runs from a bundle. The Dockerfiles in deploy/ copy this folder.
import { build, type BuildOptions } from 'esbuild'
import { copyFile, cp, mkdir, readdir, rm, stat } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { BUNDLE_LAYOUT } from '../shared/src/runtime-files.ts'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
/** Resolves packages the way the package that depends on them does (pnpm keeps them private). */
const requireFrom = (pkg: string) => createRequire(join(root, pkg, 'package.json'))

/** The @stdlib packages prepare.py's embedded source reads (EMBEDDED_PACKAGES there). */
const CORPUS_PACKAGES = ['datasets-sotu', 'datasets-moby-dick']
/** What the trainer needs at run time; pyproject.toml lets a GPU box `uv sync` its environment. */
const TRAINER_FILES = ['prepare.py', 'train.py', 'evaluate.py', 'model_server.py', 'warm_start.py', 'pyproject.toml']

/**
 * ESM bundles that still `require()` (better-sqlite3 loading its addon, optional ws speedups) need
 * a real `require`: esbuild's shim uses it when one is in scope.
 */
const BANNER = "#!/usr/bin/env node\nimport { createRequire as __arCreateRequire } from 'node:module'\nconst require = __arCreateRequire(import.meta.url)"

export interface BundleResult {
  outDir: string
  /** Every file written, relative to outDir. */
  files: string[]
  bytes: number
}

export async function bundle(outDir = join(root, 'dist')): Promise<BundleResult> {
  outDir = resolve(outDir)
  await rm(outDir, { recursive: true, force: true })
  await mkdir(outDir, { recursive: true })
  const common: BuildOptions = {
    bundle: true, platform: 'node', target: 'node20', logLevel: 'warning', legalComments: 'none',
    define: { __AUTORESEARCH_BUNDLE__: 'true' },
    // Optional native speedups of ws, loaded in try/catch; absent is fine.
    external: ['bufferutil', 'utf-8-validate'],
  }
  await build({ ...common, entryPoints: { coordinator: join(root, 'coordinator/src/cli.ts') }, outdir: outDir, outExtension: { '.js': '.mjs' }, format: 'esm', banner: { js: BANNER } })
  await build({ ...common, entryPoints: { worker: join(root, 'worker/src/cli.ts') }, outdir: outDir, outExtension: { '.js': '.mjs' }, format: 'esm', banner: { js: BANNER } })
  // The checkpoint thread (coordinator/src/db/open.ts) is plain CommonJS and requires the driver by path.
  const sqliteMain = requireFrom('coordinator').resolve('better-sqlite3')
  await build({ ...common, entryPoints: [sqliteMain], outfile: join(outDir, BUNDLE_LAYOUT.sqliteDriver), format: 'cjs' })
  const sqliteRoot = dirname(dirname(sqliteMain))
  await copyFile(join(sqliteRoot, 'build/Release/better_sqlite3.node'), join(outDir, BUNDLE_LAYOUT.sqliteAddon))

  await cp(join(root, 'coordinator/drizzle'), join(outDir, BUNDLE_LAYOUT.migrations), { recursive: true })
  await cp(join(root, 'coordinator/src/dashboard/web'), join(outDir, BUNDLE_LAYOUT.dashboardWeb), { recursive: true })
  const uplotDist = join(dirname(requireFrom('coordinator').resolve('uplot/package.json')), 'dist')
  await mkdir(join(outDir, BUNDLE_LAYOUT.uplot), { recursive: true })
  for (const f of ['uPlot.esm.js', 'uPlot.min.css']) await copyFile(join(uplotDist, f), join(outDir, BUNDLE_LAYOUT.uplot, f))
  await mkdir(join(outDir, BUNDLE_LAYOUT.trainer), { recursive: true })
  for (const f of TRAINER_FILES) await copyFile(join(root, 'trainer', f), join(outDir, BUNDLE_LAYOUT.trainer, f))
  // The worker reads program.md next to the trainer folder, as in a checkout.
  await copyFile(join(root, 'program.md'), join(outDir, BUNDLE_LAYOUT.trainer, '..', 'program.md'))
  await mkdir(dirname(join(outDir, BUNDLE_LAYOUT.safetyChecker)), { recursive: true })
  await copyFile(join(root, 'worker/safety/check_train.py'), join(outDir, BUNDLE_LAYOUT.safetyChecker))
  for (const pkg of CORPUS_PACKAGES) {
    const from = join(dirname(createRequire(join(root, 'package.json')).resolve(`@stdlib/${pkg}/package.json`)), 'data')
    const to = join(outDir, BUNDLE_LAYOUT.corpus, pkg, 'data')
    await mkdir(to, { recursive: true })
    for (const f of (await readdir(from)).filter(n => n.endsWith('.txt'))) await copyFile(join(from, f), join(to, f))
    await copyFile(join(dirname(from), 'LICENSE'), join(outDir, BUNDLE_LAYOUT.corpus, pkg, 'LICENSE'))
  }

  const files = await listFiles(outDir)
  let bytes = 0
  for (const f of files) bytes += (await stat(join(outDir, f))).size
  return { outDir, files, bytes }
}

async function listFiles(dir: string, base = dir): Promise<string[]> {
  const out: string[] = []
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name)
    if (e.isDirectory()) out.push(...await listFiles(p, base))
    else out.push(relative(base, p))
  }
  return out.sort()
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const r = await bundle(process.argv[2])
  const mb = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MB`
  console.log(`bundled into ${relative(process.cwd(), r.outDir) || '.'}: ${r.files.length} files, ${mb(r.bytes)}`)
  console.log(`  node ${join(relative(process.cwd(), r.outDir), 'coordinator.mjs')} --help`)
  console.log(`  node ${join(relative(process.cwd(), r.outDir), 'worker.mjs')} --help`)
}

// Bundles tap test files for `npm test` (scripts/tap-files.mjs), so each runs as plain JavaScript.
//
// Under `node --import=tsx`, every module a test process loads, the hundreds in node_modules too,
// goes through tsx's resolve and load hooks: loading the coordinator and the test helpers cost
// ~4.5 CPU-s that way against ~1.5 as one bundle of this project's TypeScript with the packages
// loaded by Node itself, and a test file of pure functions ~1.5 CPU-s against ~0.6 (docs/
// RELIABILITY.md, session 13). So each test file becomes one ESM file of its own TypeScript and the
// workspace's (esbuild: the same transform tsx runs), and nothing else:
//   - every package (tap, fastify, ...) stays a separate import, by the absolute path it resolves to
//     from the file that imports it (pnpm gives each workspace package its own node_modules), so
//     Node loads the same files, once each, as it would under tsx;
//   - `import.meta.url` (and `.dirname`, `.filename`) in each module is that module's own, as under tsx, so paths
//     computed from it (the repository's root, fixtures next to a test) do not move into the bundle;
//   - inline source maps: with --enable-source-maps a stack trace names the TypeScript lines.
// The bundles are not the release's (scripts/bundle.ts): no `__AUTORESEARCH_BUNDLE__`, so the code
// reads its runtime files from the checkout. A process a test starts with `--import tsx` still runs
// the TypeScript through tsx.
import { readFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { dirname, join, relative } from 'node:path'
import { pathToFileURL } from 'node:url'
import { build, transform } from 'esbuild'

/** Bare specifiers that are this project's workspace packages: bundled, not loaded from node_modules. */
const WORKSPACE = /^@autoresearch-grid\//

/** The project's compiler options, which a transform of one file does not look up by itself. */
const TSCONFIG = JSON.parse(readFileSync(new URL('../tsconfig.json', import.meta.url), 'utf8'))

const keepPackagesApart = {
  name: 'packages-by-path',
  setup(b) {
    b.onResolve({ filter: /^[^./]/ }, async args => {
      if (args.pluginData?.resolving || WORKSPACE.test(args.path)) return undefined
      if (args.path.startsWith('node:')) return { path: args.path, external: true }
      const found = await b.resolve(args.path, { kind: args.kind, importer: args.importer, resolveDir: args.resolveDir, pluginData: { resolving: true } })
      if (found.errors.length) return { errors: found.errors }
      // A builtin (`fs`) stays as written; a package file goes by its resolved path.
      return found.external ? { path: args.path, external: true } : { path: pathToFileURL(found.path).href, external: true }
    })
    // Outside node_modules: each module keeps its own import.meta.url, .dirname and .filename. esbuild's `define` replaces
    // the expression in code only (scripts/bundle.ts writes it into a string, which must stay).
    b.onLoad({ filter: /\.[cm]?[jt]s$/ }, async args => {
      if (args.path.includes('/node_modules/')) return undefined
      const source = await readFile(args.path, 'utf8')
      const { code } = await transform(source, {
        loader: /\.[cm]?ts$/.test(args.path) ? 'ts' : 'js', format: 'esm', target: 'node20', sourcemap: 'inline', sourcefile: args.path,
        tsconfigRaw: TSCONFIG,
        define: { 'import.meta.url': JSON.stringify(pathToFileURL(args.path).href), 'import.meta.dirname': JSON.stringify(dirname(args.path)), 'import.meta.filename': JSON.stringify(args.path) },
      })
      return { contents: code, loader: 'js' }
    })
  },
}

/**
 * Builds `files` (paths relative to `cwd`) into `outDir`, one `.mjs` each, in one esbuild run.
 * Resolves to a map from each file to its bundle, or throws the build's error (the caller then runs
 * the TypeScript through tsx, where the same error fails the file it is in).
 */
export async function bundleTestFiles(files, { cwd, outDir }) {
  const entryPoints = Object.fromEntries(files.map(f => [f.replace(/\.[cm]?[jt]s$/, ''), join(cwd, f)]))
  await build({
    entryPoints, outdir: outDir, outExtension: { '.js': '.mjs' }, absWorkingDir: cwd,
    bundle: true, platform: 'node', format: 'esm', target: 'node20', sourcemap: 'inline', logLevel: 'silent',
    // Two modules' classes of one name are renamed apart in one file: `.name` stays the source's.
    keepNames: true,
    plugins: [keepPackagesApart],
  })
  return new Map(files.map(f => [f, relative(cwd, join(outDir, `${f.replace(/\.[cm]?[jt]s$/, '')}.mjs`))]))
}

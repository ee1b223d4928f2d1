import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

/**
 * Files the CLIs read at run time (migrations, the dashboard's pages, the trainer, the safety
 * checker, the embedded corpus, the SQLite addon) live in two places: in a checkout, next to the
 * module that uses them (each caller says where, relative to its own import.meta.url); in a release
 * (`pnpm bundle`, scripts/bundle.ts), in dist/ next to coordinator.mjs and worker.mjs, laid out as
 * below. A bundle has a single import.meta.url (the bundle file), which is why the two differ.
 */
export const BUNDLE_LAYOUT = {
  /** coordinator/drizzle: the SQL migrations and their journal. */
  migrations: 'drizzle',
  /** coordinator/src/dashboard/web: the status page, its modules and stylesheet. */
  dashboardWeb: 'web',
  /** uplot/dist: uPlot.esm.js and uPlot.min.css, served under /vendor/uplot/. */
  uplot: 'vendor/uplot',
  /** trainer/: prepare.py, train.py, pyproject.toml. program.md sits one level up, as in a checkout. */
  trainer: 'trainer',
  /** worker/safety/check_train.py. */
  safetyChecker: 'safety/check_train.py',
  /** The @stdlib data set packages' data/*.txt that prepare.py's embedded source reads. */
  corpus: 'corpus',
  /** better-sqlite3's native addon, loaded through its nativeBinding option. */
  sqliteAddon: 'better_sqlite3.node',
  /** better-sqlite3 as one CommonJS file, for the coordinator's checkpoint thread. */
  sqliteDriver: 'sqlite-driver.cjs',
} as const

export type RuntimeFile = keyof typeof BUNDLE_LAYOUT

/** Replaced by `true` in the release bundles (esbuild `define`); not declared anywhere else. */
declare const __AUTORESEARCH_BUNDLE__: boolean | undefined

/** The folder holding coordinator.mjs and worker.mjs when running from a bundle; null in a checkout. */
export const bundleDir: string | null =
  typeof __AUTORESEARCH_BUNDLE__ !== 'undefined' && __AUTORESEARCH_BUNDLE__ ? dirname(fileURLToPath(import.meta.url)) : null

/** Where a run-time file is: in the bundle's dist/, else where `inCheckout` says (called only then). */
export function runtimeFile(name: RuntimeFile, inCheckout: () => string): string {
  return bundleDir ? join(bundleDir, BUNDLE_LAYOUT[name]) : inCheckout()
}

/** A file only a bundle has to point at (a checkout finds it through node_modules): its path, or undefined. */
export function bundledFile(name: RuntimeFile): string | undefined {
  return bundleDir ? join(bundleDir, BUNDLE_LAYOUT[name]) : undefined
}

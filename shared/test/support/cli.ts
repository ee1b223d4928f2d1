/**
 * Test support: the command lines of the two CLIs, for tests that start them as a user does.
 *
 * From a checkout the CLIs run their TypeScript through tsx (coordinator/bin, worker/bin): about
 * 2-2.5 s of CPU a start, most of it resolving and transforming hundreds of modules. The release
 * bundle (`npm run bundle`, scripts/bundle.ts) starts in about 0.5 s. The test suite starts the
 * CLIs ~100 times, so `npm test` builds the bundle from the tree under test once, before tap, and
 * names its folder in `AUTORESEARCH_TEST_DIST` (docs/RELIABILITY.md, "Where the time goes"): the
 * tests then run what a release ships. A test file run on its own (`npx tap FILE`) has no such
 * folder and runs the checkout's CLIs.
 */
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('../../../', import.meta.url))
const dist = process.env.AUTORESEARCH_TEST_DIST

function cli(name: 'coordinator' | 'worker'): string {
  if (dist) {
    const bundled = join(dist, `${name}.mjs`)
    if (!existsSync(bundled)) throw new Error(`AUTORESEARCH_TEST_DIST=${dist} holds no ${name}.mjs: build it with \`npx tsx scripts/bundle.ts ${dist}\`, or unset the variable to run the checkout's CLI`)
    return bundled
  }
  return join(ROOT, name, 'bin', `${name}.mjs`)
}

/** `coordinator`: run it as `node <coordinatorCli> ...`. */
export const coordinatorCli = cli('coordinator')
/** `worker`: run it as `node <workerCli> ...`. */
export const workerCli = cli('worker')

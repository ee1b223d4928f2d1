// Runs tap test files a few at a time without tap's runner, for `npm test` (scripts/test.mjs).
//
// Each file is a plain Node process, `node --enable-source-maps <bundle>`: a tap test file prints
// its own TAP when run directly. The bundle is the file's TypeScript and the workspace's as one
// JavaScript file (scripts/bundle-tests.mjs: tsx's module hooks cost 1-3 CPU-s a file); where the
// bundles cannot be built, `node --enable-source-maps --import=tsx <file>` runs the TypeScript. tap's runner would add two module hooks to every test
// process (@tapjs/mock's, which no test uses, and @tapjs/processinfo's, kept for coverage, which is
// off) and put processinfo into NODE_OPTIONS for every Node process a test starts, where it records
// every module loaded: a coordinator CLI's start went from 0.5 to 1.5 CPU-s, a worker's from 0.4 to
// 1.2, and a test file of real runs cost ~20 % more CPU in all (docs/RELIABILITY.md, session 11).
// The output is what `tap --reporter=tap` printed: one subtest per file, its TAP indented, in the
// order the files end; a file's stderr follows its TAP as comments. `npx tap <file>` still runs one
// file the usual way (.taprc).
import { spawn } from 'node:child_process'
import { join } from 'node:path'

/**
 * Runs `files` (paths relative to `cwd`), `jobs` at a time, each with tap's per-test timeout
 * `timeoutSeconds` (a hang guard; a file still running a minute after it is killed). Resolves to
 * the exit code (0: every file passed), the whole output and each file's wall seconds (`times`);
 * `onOutput` gets each file's block. Files start in the order given.
 */
export async function runTapFiles(files, { cwd, env = {}, jobs = 2, timeoutSeconds = 1800, onOutput = () => {} }) {
  // Imported here, not at the top: scripts/test.mjs loads this file before it installs esbuild.
  const bundles = await import('./bundle-tests.mjs').then(({ bundleTestFiles }) => bundleTestFiles(files, { cwd, outDir: join(cwd, '.bundle', 'test-files') })).catch(e => {
    onOutput(`# the test files could not be bundled; each runs through tsx instead:\n${String(e.message ?? e).replace(/^/gm, '# ')}\n`)
    return new Map()
  })
  return new Promise(resolve => {
    let next = 0
    let running = 0
    let done = 0
    let failed = 0
    let out = ''
    const times = {}
    const indent = text => text.replace(/\n+$/, '').split('\n').map(l => (l ? `    ${l}` : l)).join('\n')
    const asComments = text => text.replace(/\n+$/, '').split('\n').map(l => `# ${l}`).join('\n')
    const startNext = () => {
      if (next >= files.length) {
        if (running === 0) resolve({ code: failed === 0 ? 0 : 1, out, times })
        return
      }
      const file = files[next++]
      running++
      const started = Date.now()
      const bundle = bundles.get(file)
      const child = spawn(process.execPath, ['--enable-source-maps', ...(bundle ? [bundle] : ['--import=tsx', file])], {
        cwd, env: { ...process.env, ...env, TAP_TIMEOUT: String(timeoutSeconds) }, stdio: ['ignore', 'pipe', 'pipe'],
      })
      let stdout = ''
      let stderr = ''
      child.stdout.on('data', chunk => { stdout += chunk })
      child.stderr.on('data', chunk => { stderr += chunk })
      const guard = setTimeout(() => child.kill('SIGKILL'), (timeoutSeconds + 60) * 1000)
      child.on('close', (code, signal) => {
        clearTimeout(guard)
        running--
        const ok = code === 0
        if (!ok) failed++
        times[file] = Math.round((Date.now() - started) / 100) / 10
        const why = ok ? '' : ` (${signal ? `killed by ${signal}` : `exit code ${code}`})`
        const block = [`# Subtest: ${file}`, indent(stdout), ...(stderr.trim() ? [asComments(stderr)] : []),
          `${ok ? 'ok' : 'not ok'} ${++done} - ${file}${why} # time=${Date.now() - started}ms`, ''].join('\n')
        out += block
        onOutput(block)
        startNext()
      })
    }
    for (let i = 0; i < Math.max(1, jobs); i++) startNext()
  })
}

// `npm test`: installs what is missing, then runs every suite — the TypeScript type check, the
// layer check of the imports (scripts/structure.ts, docs/STRUCTURE.md), the linters (Biome and
// Ruff, scripts/lint.mjs), the tap suites of shared/, coordinator/, worker/, trainer/js/ and
// deploy/ (scripts/tap-files.mjs: three files at a time, each a plain Node process on the file bundled
// (scripts/bundle-tests.mjs), a hang guard of a timeout; the CLIs the tests start come from a release bundle built first), and the trainer's pytest suite
// (its slowest tests listed) — and ends with one line that counts them all together:
// `N passed, N failed`. tap waits for the bundle; everything else runs side by side, because the
// suite is CPU-bound and the tap files alone leave a core idle at times (waiting on workers, a browser, a
// restart): the tap files' output streams as they end, each other suite's is printed in one piece when
// it ends. No test asserts speed, so a busy machine slows the suite without failing it
// (docs/RELIABILITY.md, "Tests on a busy machine").
import { spawn } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { bootstrap, root } from './bootstrap.mjs'
import { runTapFiles } from './tap-files.mjs'

const { python } = bootstrap({ tests: true })

/** Runs a command and resolves to its exit code and output; `stream` echoes the output as it comes. */
function capture(cmd, args, { env = {}, stream = false } = {}) {
  return new Promise(resolve => {
    const child = spawn(cmd, args, { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    const take = sink => chunk => { out += chunk; if (stream) sink.write(chunk) }
    child.stdout.on('data', take(process.stdout))
    child.stderr.on('data', take(process.stderr))
    child.on('close', code => resolve({ code, out }))
  })
}

/** A suite that is one check: one passed, or one failed. */
const check = r => ({ passed: r.code === 0 ? 1 : 0, failed: r.code === 0 ? 0 : 1, failures: r.code === 0 ? [] : [r.out.trimEnd().split('\n').slice(-15).join('\n')] })

/** The test files under a folder, as tap would find them (.taprc's excludes). */
const testFiles = dir => readdirSync(join(root, dir), { recursive: true, withFileTypes: true })
  .filter(f => f.isFile() && f.name.endsWith('.test.ts') && !/(^|\/)(fixtures?|dist|node_modules)(\/|$)/.test(relative(root, f.parentPath ?? f.path)))
  .map(f => relative(root, join(f.parentPath ?? f.path, f.name)))
  .sort()

// The tap files start longest first, so the longest do not start last and run alone at the end
// (three at a time, alphabetical order ended ~30 s later in a simulation over session 13's times).
// The times are this checkout's last run (.bundle/test-times.json), else the committed
// scripts/test-times.json (a clean clone); a file in neither counts as a median one. Refresh the
// committed list with `cp .bundle/test-times.json scripts/test-times.json` after a quiet run.
const TIMES = [join(root, '.bundle', 'test-times.json'), join(root, 'scripts', 'test-times.json')]
const readTimes = () => {
  for (const f of TIMES) if (existsSync(f)) try { return JSON.parse(readFileSync(f, 'utf8')) } catch {}
  return {}
}
function longestFirst(files) {
  const times = readTimes()
  const known = files.map(f => times[f]).filter(t => typeof t === 'number').sort((a, b) => a - b)
  const median = known.length ? known[Math.floor(known.length / 2)] : 0
  const time = f => (typeof times[f] === 'number' ? times[f] : median)
  return [...files].sort((a, b) => time(b) - time(a) || a.localeCompare(b))
}

// The tests start the CLIs from the release bundle of this tree (~0.5 s of CPU a start, against
// ~2.5 s through tsx): shared/test/support/cli.ts. A bundle that does not build is a failure, and
// the tests then start the checkout's CLIs.
const dist = join(root, '.bundle', 'test')
let bundled = false

/**
 * The failed tests of the tap output, a block each: the file, each `not ok` line inside it with the
 * diagnostics below it (a few lines), and the last lines of the file's stderr where it crashed.
 */
function failedTapTests(out) {
  const blocks = out.split(/^(?=# Subtest: )/m).filter(b => /^not ok \d+ - /m.test(b))
  return blocks.map(block => {
    const lines = block.replace(/\n+$/, '').split('\n')
    const shown = [lines[0]]
    lines.forEach((line, i) => {
      if (!/^ {4,}not ok \d+/.test(line) || /# TODO/.test(line)) return
      // The diagnostics that say what: found, wanted, the source line, an error's message.
      const end = lines.findIndex((l, j) => j > i && /^ +\.\.\.$/.test(l))
      const yaml = lines.slice(i + 1, end < 0 ? i + 40 : end)
      const keys = yaml.filter(l => /^ +(found|wanted|doNotWant|pattern|compare|message|signal|expired): /.test(l))
      const diff = yaml.findIndex(l => /^ +diff: \|/.test(l))
      if (diff >= 0) keys.push(...yaml.slice(diff + 1, diff + 9).filter(l => /^ +[-+]/.test(l)))
      const where = yaml.find(l => /^ +fileName: /.test(l))
      const lineNo = yaml.find(l => /^ +lineNumber: /.test(l))
      shown.push(line, ...keys, ...(where ? [`${where} ${lineNo?.trim() ?? ''}`] : []))
    })
    shown.push(...lines.filter(l => l.startsWith('# ') && !l.startsWith('# Subtest')).slice(-12), lines.at(-1))
    return shown.join('\n')
  })
}

const SUITES = {
  bundle: {
    run: async () => {
      const r = await capture('npx', ['tsx', 'scripts/bundle.ts', dist], { stream: true })
      bundled = r.code === 0
      return r
    },
    count: check,
  },
  types: { run: () => capture('npx', ['tsc', '-p', 'tsconfig.json', '--noEmit']), count: check },
  structure: { run: () => capture('npx', ['tsx', 'scripts/structure.ts', '--check']), count: check },
  // Lint rules only until the lead's one-off `npm run format` over the tree; then `--check-format`.
  lint: { run: () => capture(process.execPath, ['scripts/lint.mjs']), count: check },
  tap: {
    run: async () => {
      const files = ['shared/test', 'coordinator/test', 'worker/test', 'trainer/js/test', 'deploy/test'].flatMap(testFiles)
      const env = { AUTORESEARCH_PYTHON: python, ...(bundled ? { AUTORESEARCH_TEST_DIST: dist } : {}) }
      // TEST_JOBS: how many test files run at once. 3 on 2 cores: many files wait on child processes
      // and leases, and a third fills those gaps (docs/RELIABILITY.md, session 12: 850 s against 904-978).
      const jobs = Number(process.env.TEST_JOBS) || 3
      const r = await runTapFiles(longestFirst(files), { cwd: root, env, jobs, timeoutSeconds: 1800, onOutput: block => process.stdout.write(block) })
      mkdirSync(join(root, '.bundle'), { recursive: true })
      writeFileSync(TIMES[0], `${JSON.stringify(Object.fromEntries(Object.entries(r.times).sort()), null, 1)}\n`)
      return r
    },
    count: r => {
      // Each `t.test(...)` inside a test file is one test: in TAP they are the points one level down.
      const passed = (r.out.match(/^ {4}ok \d+/gm) ?? []).length
      // A test marked todo that fails is reported `not ok ... # TODO` and counts as neither.
      const failed = (r.out.match(/^ {4}not ok \d+(?!.*# TODO)/gm) ?? []).length
      // a file that crashed before its first test
      return { passed, failed: r.code !== 0 && failed === 0 ? 1 : failed, failures: failedTapTests(r.out) }
    },
  },
  pytest: {
    run: () => capture(python, ['-m', 'pytest', '-q', '-p', 'no:cacheprovider', '--durations=10', 'trainer/tests'], { env: { PYTHONDONTWRITEBYTECODE: '1' } }),
    count: r => {
      const failures = r.code === 0 ? [] : [r.out.split('\n').filter(l => /^(FAILED|ERROR) /.test(l)).join('\n') || '# pytest failed']
      const last = r.out.split('\n').filter(l => /passed|failed|error/.test(l)).pop() ?? ''
      const n = word => Number((new RegExp(`(\\d+) ${word}`).exec(last) ?? [])[1] ?? 0)
      const failed = n('failed') + n('error')
      return { passed: n('passed'), failed: r.code !== 0 && failed === 0 ? 1 : failed, failures }
    },
  },
}

const only = process.argv.slice(2)
const names = Object.keys(SUITES).filter(name => only.length === 0 || only.includes(name) || (name === 'bundle' && only.includes('tap')))
const started = Date.now()
const run = async name => {
  const r = await SUITES[name].run()
  if (name !== 'tap' && name !== 'bundle') process.stdout.write(`\n# ${name} (${Math.round((Date.now() - started) / 1000)} s)\n${r.out}`)
  return { name, ...SUITES[name].count(r) }
}
// Only tap needs the bundle: the other suites start at once.
const afterBundle = async () => [...(names.includes('bundle') ? [await run('bundle')] : []), ...(names.includes('tap') ? [await run('tap')] : [])]
const suites = (await Promise.all([afterBundle(), ...names.filter(n => n !== 'bundle' && n !== 'tap').map(async n => [await run(n)])])).flat()

const passed = suites.reduce((n, s) => n + s.passed, 0)
const failed = suites.reduce((n, s) => n + s.failed, 0)
// What failed, again, just above the counts: CI keeps only the end of a long output.
const failures = suites.flatMap(s => (s.failures ?? []).map(f => `## ${s.name}\n${f}`))
if (failures.length > 0) console.log(`\n# what failed\n${failures.join('\n').slice(0, 8000)}`)
console.log('')
for (const s of suites) console.log(`${s.name}: ${s.passed} passed, ${s.failed} failed`)
console.log(`all suites: ${Math.round((Date.now() - started) / 1000)} s after installing`)
console.log(`${passed} passed, ${failed} failed`)
process.exit(failed === 0 ? 0 : 1)

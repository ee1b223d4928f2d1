// `npm test`: installs what is missing, then runs every suite — the TypeScript type check, the
// layer check of the imports (scripts/structure.ts, docs/STRUCTURE.md), the linters (Biome and
// Ruff, scripts/lint.mjs), the tap suites of shared/, coordinator/, worker/, trainer/js/ and
// deploy/ (.taprc: two files at a time, a hang guard of a timeout), and the trainer's pytest suite
// (its slowest tests listed) — and ends with one line that counts them all together:
// `N passed, N failed`. No test asserts speed, so a busy machine slows the suite without failing
// it (docs/RELIABILITY.md, "Tests on a busy machine").
import { spawn } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { join, relative } from 'node:path'
import { bootstrap, root } from './bootstrap.mjs'

const { python } = bootstrap({ tests: true })

/** Runs a command, echoing its output, and returns the output. */
function capture(cmd, args, env = {}) {
  return new Promise(resolve => {
    const child = spawn(cmd, args, { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    const take = stream => chunk => { out += chunk; stream.write(chunk) }
    child.stdout.on('data', take(process.stdout))
    child.stderr.on('data', take(process.stderr))
    child.on('close', code => resolve({ code, out }))
  })
}

const suites = []
const only = process.argv.slice(2)
const wanted = name => only.length === 0 || only.includes(name)

if (wanted('types')) {
  const r = await capture('npx', ['tsc', '-p', 'tsconfig.json', '--noEmit'])
  suites.push({ name: 'types', passed: r.code === 0 ? 1 : 0, failed: r.code === 0 ? 0 : 1 })
}

if (wanted('structure')) {
  const r = await capture('npx', ['tsx', 'scripts/structure.ts', '--check'])
  suites.push({ name: 'structure', passed: r.code === 0 ? 1 : 0, failed: r.code === 0 ? 0 : 1 })
}

if (wanted('lint')) {
  // Lint rules only until the lead's one-off `npm run format` over the tree; then `--check-format`.
  const r = await capture(process.execPath, ['scripts/lint.mjs'])
  suites.push({ name: 'lint', passed: r.code === 0 ? 1 : 0, failed: r.code === 0 ? 0 : 1 })
}

/** The test files under a folder: tap, without its TypeScript plugin (.taprc), finds no .ts file in a folder. */
const testFiles = dir => readdirSync(join(root, dir), { recursive: true, withFileTypes: true })
  .filter(f => f.isFile() && f.name.endsWith('.test.ts') && !/(^|\/)(fixtures?|dist|node_modules)(\/|$)/.test(relative(root, f.parentPath ?? f.path)))
  .map(f => relative(root, join(f.parentPath ?? f.path, f.name)))
  .sort()

if (wanted('tap')) {
  const files = ['shared/test', 'coordinator/test', 'worker/test', 'trainer/js/test', 'deploy/test'].flatMap(testFiles)
  // The tests start the CLIs from the release bundle of this tree (~0.5 s of CPU a start, against
  // ~2.5 s through tsx): shared/test/support/cli.ts. A bundle that does not build is a failure,
  // and the tests then start the checkout's CLIs.
  const dist = join(root, '.bundle', 'test')
  const built = await capture('npx', ['tsx', 'scripts/bundle.ts', dist])
  suites.push({ name: 'bundle', passed: built.code === 0 ? 1 : 0, failed: built.code === 0 ? 0 : 1 })
  // Each `t.test(...)` inside a test file is one test: in TAP they are the points one level down.
  const r = await capture('npx', ['tap', '--reporter=tap', ...files], { AUTORESEARCH_PYTHON: python, ...(built.code === 0 ? { AUTORESEARCH_TEST_DIST: dist } : {}) })
  const passed = (r.out.match(/^ {4}ok \d+/gm) ?? []).length
  // A test marked todo that fails is reported `not ok ... # TODO` and counts as neither.
  let failed = (r.out.match(/^ {4}not ok \d+(?!.*# TODO)/gm) ?? []).length
  if (r.code !== 0 && failed === 0) failed = 1 // a file that crashed before its first test
  suites.push({ name: 'tap', passed, failed })
}

if (wanted('pytest')) {
  const r = await capture(python, ['-m', 'pytest', '-q', '-p', 'no:cacheprovider', '--durations=10', 'trainer/tests'], { PYTHONDONTWRITEBYTECODE: '1' })
  const count = word => Number((new RegExp(`(\\d+) ${word}`).exec(r.out.split('\n').filter(l => /passed|failed|error/.test(l)).pop() ?? '') ?? [])[1] ?? 0)
  let failed = count('failed') + count('error')
  if (r.code !== 0 && failed === 0) failed = 1
  suites.push({ name: 'pytest', passed: count('passed'), failed })
}

const passed = suites.reduce((n, s) => n + s.passed, 0)
const failed = suites.reduce((n, s) => n + s.failed, 0)
console.log('')
for (const s of suites) console.log(`${s.name}: ${s.passed} passed, ${s.failed} failed`)
console.log(`${passed} passed, ${failed} failed`)
process.exit(failed === 0 ? 0 : 1)

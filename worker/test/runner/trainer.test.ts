import t, { type Test } from 'tap'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Progress } from '@autoresearch-grid/shared'
import { runTrainer, type RunTrainerOptions } from '../../src/runner/trainer.ts'
import { until } from '../../../shared/test/support/until.ts'
import { findPython } from '@autoresearch-grid/trainer'

const FAKE = readFileSync(new URL('../fixtures/fake_train.py', import.meta.url), 'utf8')
const PYTHON = process.env.AUTORESEARCH_TEST_PYTHON ?? 'python3'

function options(t: Test, mode: string, extra: Partial<RunTrainerOptions> = {}): RunTrainerOptions {
  const runDir = t.testdir({ 'train.py': FAKE })
  return {
    python: PYTHON,
    runDir,
    budgetSeconds: 1,
    profile: 'cpu-tiny',
    ...extra,
    extraEnv: { FAKE_MODE: mode, ...extra.extraEnv },
  }
}

/** Alive and not a zombie waiting for a reaper that may not exist in a container. */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
  } catch {
    return false
  }
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'))
  } catch {
    return false
  }
}

t.test('a clean run yields parsed metrics and no error', async t => {
  const r = await runTrainer(options(t, 'ok'))
  t.equal(r.exitCode, 0)
  t.equal(r.error, null)
  t.equal(r.summary?.training_seconds, 1)
  t.equal(r.summary?.num_steps, 4)
})

t.test('progress lines reach onProgress in order', async t => {
  const seen: Progress[] = []
  await runTrainer(options(t, 'ok', { onProgress: p => seen.push(p) }))
  t.same(seen.map(p => p.step), [1, 2, 3, 4])
  t.equal(seen[3].percent, 100)
  t.equal(seen[0].loss, 4.5)
})

t.test('progress redrawn with carriage returns is reported and kept out of the tail', async t => {
  const seen: number[] = []
  const r = await runTrainer(options(t, 'cr', { onProgress: p => seen.push(p.step) }))
  t.same(seen, [1, 2, 3, 4])
  t.notMatch(r.logTail, /step 00001/)
  t.equal(r.summary?.training_seconds, 1)
})

t.test('stdout and stderr both reach onLine', async t => {
  const lines: string[] = []
  await runTrainer(options(t, 'ok', { onLine: l => lines.push(l) }))
  t.ok(lines.includes('loading data'))
  t.ok(lines.includes('some warning on stderr'))
})

t.test('budget, profile, seed, cache, data and unbuffered output reach the trainer', async t => {
  const r = await runTrainer(options(t, 'env', { budgetSeconds: 7, seed: 42, cacheDir: '/tmp/c', dataDir: '/tmp/c/data/x', extraEnv: { EXTRA: 'yes' } }))
  for (const expected of ['AUTORESEARCH_TIME_BUDGET=7', 'AUTORESEARCH_PROFILE=cpu-tiny', 'AUTORESEARCH_SEED=42', 'AUTORESEARCH_CACHE=/tmp/c', 'AUTORESEARCH_DATA=/tmp/c/data/x', 'PYTHONUNBUFFERED=1', 'EXTRA=yes']) {
    t.match(r.logTail, expected)
  }
})

t.test('a gpu trainer keeps torch\'s bytecode with the compile caches, and may write it', async t => {
  // An install without bytecode under PYTHONDONTWRITEBYTECODE compiled torch from source on every
  // start: 10 s of each experiment on an H100 (docs/TRAINER.md, "Start-up").
  process.env.PYTHONDONTWRITEBYTECODE = '1'
  t.teardown(() => { delete process.env.PYTHONDONTWRITEBYTECODE })
  const gpu = await runTrainer(options(t, 'env', { profile: 'gpu', cacheDir: '/tmp/c' }))
  t.match(gpu.logTail, 'PYTHONPYCACHEPREFIX=/tmp/c/compile/pycache')
  t.match(gpu.logTail, 'PYTHONDONTWRITEBYTECODE=<unset>')
  const cpu = await runTrainer(options(t, 'env', { cacheDir: '/tmp/c' }))
  t.match(cpu.logTail, 'PYTHONPYCACHEPREFIX=<unset>', 'a CPU box keeps its installed bytecode')
})

t.test('extraEnv cannot override the budget', async t => {
  const r = await runTrainer(options(t, 'env', { budgetSeconds: 3, extraEnv: { AUTORESEARCH_TIME_BUDGET: '9999' } }))
  t.match(r.logTail, 'AUTORESEARCH_TIME_BUDGET=3')
})

t.test('a crash gives no metrics, an error naming the exit code and exception, and the log tail', async t => {
  const r = await runTrainer(options(t, 'crash'))
  t.equal(r.exitCode, 1)
  t.equal(r.summary, null)
  t.match(r.error, /exited with code 1: RuntimeError: CUDA out of memory/)
  t.match(r.logTail, /Traceback/)
})

t.test('a clean exit with an incomplete summary is a parse error', async t => {
  const r = await runTrainer(options(t, 'no-summary'))
  t.equal(r.exitCode, 0)
  t.equal(r.summary, null)
  t.match(r.error, /summary is unusable: .*incomplete/)
})

/**
 * Runs a fake that must get going (start children, ignore SIGTERM) before the worker's clock, which
 * starts at the spawn, runs out: 3 s, then twice as long while a loaded machine did not let it get
 * there (the children's pid file once did not exist after 3 s at load average 28).
 */
async function runStarted(t: Test, mode: string, started: (r: Awaited<ReturnType<typeof runTrainer>>) => boolean, extra: Partial<RunTrainerOptions> = {}) {
  for (let seconds = 3; ; seconds *= 2) {
    const r = await runTrainer(options(t, mode, { ...extra, hardTimeoutSeconds: seconds }))
    if (started(r)) return r
    t.comment(`the fake had not started after ${seconds} s: again with twice the time`)
  }
}

t.test('a hang is killed at the hard timeout', async t => {
  const r = await runTrainer(options(t, 'hang', { hardTimeoutSeconds: 1 }))
  t.equal(r.timedOut, true)
  t.equal(r.summary, null)
  t.match(r.error, /killed by the worker's clock after 1s/)
  t.ok(r.runSeconds >= 1, `not before the timeout: ${r.runSeconds}s (the fake sleeps an hour)`)
})

t.test('the hard timeout kills the trainer\'s child processes too', async t => {
  const dir = t.testdir()
  const pidfile = join(dir, 'pids')
  const started = () => { try { return readFileSync(pidfile, 'utf8').split('\n').length === 2 } catch { return false } }
  const r = await runStarted(t, 'hang-children', started, { extraEnv: { FAKE_PIDFILE: pidfile } })
  t.equal(r.timedOut, true)
  const pids = readFileSync(pidfile, 'utf8').split('\n').map(Number)
  t.equal(pids.length, 2)
  // Killed, then reaped by init at its own pace: wait for it (the children sleep an hour).
  await until('the children to be gone', () => pids.every(pid => !isAlive(pid)))
  t.pass('both children are gone')
})

t.test('a trainer that ignores SIGTERM is killed after the grace period', async t => {
  const r = await runStarted(t, 'ignore-term', r => r.logTail.includes('ignoring SIGTERM'), { killGraceSeconds: 0.5 })
  t.equal(r.timedOut, true)
  t.equal(r.signal, 'SIGKILL', 'SIGTERM was ignored; SIGKILL ended it')
})

t.test('an abort signal stops the run and says so', async t => {
  const controller = new AbortController()
  const run = runTrainer(options(t, 'hang', {
    signal: controller.signal,
    onProgress: () => controller.abort(new Error('unit cancelled by coordinator')),
  }))
  const r = await run
  t.equal(r.aborted, true)
  t.equal(r.summary, null)
  t.match(r.error, /aborted: unit cancelled by coordinator/)
})

t.test('an already aborted signal starts nothing', async t => {
  const r = await runTrainer(options(t, 'ok', { signal: AbortSignal.abort(new Error('shutting down')) }))
  t.equal(r.aborted, true)
  t.equal(r.logTail, '')
})

t.test('a missing interpreter is reported as a start failure', async t => {
  const r = await runTrainer({ ...options(t, 'ok'), python: '/nonexistent/python' })
  t.equal(r.summary, null)
  t.match(r.error, /could not start the trainer/)
})

t.test('the wrap prefix runs in front of the interpreter', async t => {
  const r = await runTrainer(options(t, 'env', { wrap: ['env', 'EXTRA=wrapped'] }))
  t.match(r.logTail, 'EXTRA=wrapped')
})

t.test('a throwing callback stops the run and is rethrown', async t => {
  await t.rejects(runTrainer(options(t, 'hang', { onProgress: () => { throw new Error('bug in callback') } })), /bug in callback/)
})

// trainer/warm_start.py: the interpreter starts before the run's turn and imports torch; the
// campaign's code runs only once the turn comes (runner/measure.ts starts it so on a GPU).
const WARM_START = new URL('../../../trainer/warm_start.py', import.meta.url).pathname
/** The warm start imports torch: the Python the worker would find (python3 on PATH may lack it). */
const TORCH_PYTHON = (await findPython().catch(() => null))?.path
const needsTorch = { skip: TORCH_PYTHON ? false : 'needs a Python with torch' }
const RECORDS_ITS_START = 'import sys\nopen("ran", "w").write("yes")\nprint("torch already imported:", "torch" in sys.modules, "| as", __name__, "| argv", sys.argv, flush=True)\n'

t.test('a warm start imports torch before its turn, and runs train.py as python would once started', needsTorch, async t => {
  const runDir = t.testdir({ 'train.py': RECORDS_ITS_START })
  let start!: (go: boolean) => void
  const when = new Promise<boolean>(resolve => { start = resolve })
  const run = runTrainer({ python: TORCH_PYTHON!, runDir, budgetSeconds: 1, profile: 'cpu-tiny', warmStart: { script: WARM_START, when } })
  await new Promise(r => setTimeout(r, 1500))
  t.notOk(existsSync(join(runDir, 'ran')), 'nothing of train.py ran before the turn')
  start(true)
  const r = await run
  t.equal(r.exitCode, 0, r.logTail)
  t.ok(existsSync(join(runDir, 'ran')), 'it ran once started')
  t.match(r.logTail, "torch already imported: True | as __main__ | argv ['train.py']")
})

t.test('a warm start that is not needed ends without running train.py', needsTorch, async t => {
  const runDir = t.testdir({ 'train.py': RECORDS_ITS_START })
  const r = await runTrainer({ python: TORCH_PYTHON!, runDir, budgetSeconds: 1, profile: 'cpu-tiny', warmStart: { script: WARM_START, when: Promise.resolve(false) } })
  t.equal(r.aborted, true)
  t.match(r.error, /not needed/)
  t.notOk(existsSync(join(runDir, 'ran')))
})

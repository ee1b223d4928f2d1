import t from 'tap'
import { chmodSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { findPython, PythonNotFoundError } from '../find-python.ts'

/** A stand-in interpreter: a shell script that answers the torch probe the way we tell it to. */
function fakePython(dir: string, name: string, body: string): string {
  const path = join(dir, name)
  writeFileSync(path, `#!/bin/sh\n${body}\n`)
  chmodSync(path, 0o755)
  return path
}

const WITH_TORCH = 'echo 2.8.0+cu128; echo /opt/venv/bin/python'
const WITHOUT_TORCH = `echo "ModuleNotFoundError: No module named 'torch'" >&2; exit 1`

t.test('returns the first candidate that imports torch, with its version and executable', async t => {
  const dir = t.testdir()
  const found = await findPython({
    env: {},
    candidates: [join(dir, 'missing'), fakePython(dir, 'bare', WITHOUT_TORCH), fakePython(dir, 'good', WITH_TORCH)],
  })
  t.same(found, { path: '/opt/venv/bin/python', torchVersion: '2.8.0+cu128' })
})

t.test('AUTORESEARCH_PYTHON wins over the candidates', async t => {
  const dir = t.testdir()
  const override = fakePython(dir, 'override', 'echo 1.13.1; echo /custom/python')
  const found = await findPython({ env: { AUTORESEARCH_PYTHON: override }, candidates: [fakePython(dir, 'good', WITH_TORCH)] })
  t.equal(found.path, '/custom/python')
})

t.test('an AUTORESEARCH_PYTHON without torch is an error, not a silent fallback', async t => {
  const dir = t.testdir()
  const bare = fakePython(dir, 'bare', WITHOUT_TORCH)
  await t.rejects(
    findPython({ env: { AUTORESEARCH_PYTHON: bare }, candidates: [fakePython(dir, 'good', WITH_TORCH)] }),
    { name: 'PythonNotFoundError', message: new RegExp(`AUTORESEARCH_PYTHON=${bare} .*has no torch`) },
  )
})

t.test('with no usable Python the error lists what was tried and what to install', async t => {
  const dir = t.testdir()
  const err = await findPython({ env: {}, candidates: [join(dir, 'missing'), fakePython(dir, 'bare', WITHOUT_TORCH)] }).catch(e => e)
  t.type(err, PythonNotFoundError)
  t.match(err.message, /missing: not found/)
  t.match(err.message, /bare: has no torch/)
  t.match(err.message, /apt-get install python3-torch python3-sentencepiece/)
  t.match(err.message, /uv sync/)
})

t.test('a candidate that hangs is given up after the timeout', async t => {
  const dir = t.testdir()
  const err = await findPython({ env: {}, candidates: [fakePython(dir, 'slow', 'exec sleep 30')], timeoutMs: 300 }).catch(e => e)
  t.match(err.message, /timed out/)
})

t.test('an interpreter that imported torch is asked once per process; one that failed is asked again', async t => {
  const dir = t.testdir()
  const calls = join(dir, 'calls')
  const good = fakePython(dir, 'counted', `echo x >> ${calls}; echo 2.8.0; echo /opt/counted/python`)
  for (let i = 0; i < 3; i++) t.equal((await findPython({ env: { AUTORESEARCH_PYTHON: good } })).path, '/opt/counted/python')
  t.equal(readFileSync(calls, 'utf8').trim().split('\n').length, 1, 'probed once')
  const flaky = fakePython(dir, 'flaky', `echo x >> ${calls}.flaky; [ -e ${dir}/ready ] || exit 1; echo 2.8.0; echo /opt/flaky/python`)
  await t.rejects(findPython({ env: { AUTORESEARCH_PYTHON: flaky } }))
  writeFileSync(join(dir, 'ready'), '')
  t.equal((await findPython({ env: { AUTORESEARCH_PYTHON: flaky } })).path, '/opt/flaky/python', 'asked again after a failure')
})

t.test('torch found without importing it: the version its version.py gives is the one importing it gives', { skip: process.env.AUTORESEARCH_PYTHON ? false : 'needs AUTORESEARCH_PYTHON (npm test sets it)' }, async t => {
  const env = { AUTORESEARCH_PYTHON: process.env.AUTORESEARCH_PYTHON }
  const found = await findPython({ env })
  const imported = await findPython({ env, importTorch: true })
  t.match(found.torchVersion, /^\d+\.\d+/)
  t.same(found, imported)
})

t.test('a Python without torch is refused by the probe that does not import it, as by the one that does', async t => {
  const python = process.env.AUTORESEARCH_PYTHON ?? 'python3'
  const dir = t.testdir()
  // An interpreter whose torch cannot be found: the real Python with its site packages left out.
  const bare = fakePython(dir, 'bare', `exec ${python} -S "$@"`)
  for (const importTorch of [false, true]) {
    const err = await findPython({ env: { AUTORESEARCH_PYTHON: bare }, importTorch }).catch(e => e)
    t.ok(err instanceof PythonNotFoundError, `importTorch ${importTorch}: refused`)
    t.match(err.message, /has no torch/)
  }
})

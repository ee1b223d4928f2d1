import t from 'tap'
import { createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import { detectSandbox } from '../../src/sandbox/detect.ts'
import { INSIDE } from '../../src/sandbox/bwrap.ts'
import { runTrainer } from '../../src/runner/trainer.ts'
import { trainerEnvironment } from '../../src/runner/env.ts'

const PYTHON = process.env.AUTORESEARCH_TEST_PYTHON ?? 'python3'

// A "trainer" that reports whether it can reach a port on this machine, and what it can see of
// the worker's environment. The policy would refuse such a train.py; these tests go under it, to
// the runner, to show the second line of defence.
const PROBE = `
import os, socket, sys
try:
    socket.create_connection(("127.0.0.1", int(os.environ["PROBE_PORT"])), timeout=3).close()
    print("network: reachable")
except OSError as e:
    print("network: unreachable", e)
print("secrets:", sorted(k for k in os.environ if "KEY" in k or "TOKEN" in k))
print("path:", "PATH" in os.environ)
`

const sandbox = await detectSandbox(PYTHON)

t.test('the sandboxed trainer has no network', async t => {
  if (!sandbox.ok) return t.fail(`no sandbox on this machine (npm test installs bubblewrap): ${sandbox.problem}`)
  const server = createServer(socket => socket.end())
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => server.close())
  const port = String((server.address() as AddressInfo).port)
  const runDir = t.testdir({ 'train.py': PROBE })
  const open = await runTrainer({ python: PYTHON, runDir, budgetSeconds: 1, profile: 'cpu-tiny', extraEnv: { PROBE_PORT: port } })
  t.match(open.logTail, /network: reachable/, 'the probe reaches the port without isolation (the control)')
  const closed = await runTrainer({
    python: PYTHON, runDir, budgetSeconds: 1, profile: 'cpu-tiny', extraEnv: { PROBE_PORT: port },
    sandbox: { host: sandbox.host, mounts: [{ host: runDir, inside: INSIDE.run, writable: true }], env: {} },
  })
  t.match(closed.logTail, /network: unreachable/, 'in the sandbox it does not')
})

t.test('the trainer does not inherit the worker\'s secrets', async t => {
  const before = { ...process.env }
  process.env.ANTHROPIC_API_KEY = 'sk-secret'
  process.env.AUTORESEARCH_TOKEN = 'arg_wrk_secret'
  process.env.AWS_SECRET_ACCESS_KEY = 'aws'
  t.teardown(() => { process.env = before })
  const runDir = t.testdir({ 'train.py': PROBE })
  const r = await runTrainer({ python: PYTHON, runDir, budgetSeconds: 1, profile: 'cpu-tiny', extraEnv: { PROBE_PORT: '9' } })
  t.match(r.logTail, /secrets: \[\]/)
  t.match(r.logTail, /path: True/)
  t.same(Object.keys(trainerEnvironment({ PATH: '/bin', CUDA_VISIBLE_DEVICES: '0', GITHUB_TOKEN: 'x', AUTORESEARCH_TOKEN: 'y', AUTORESEARCH_CACHE: '/c', SSH_AUTH_SOCK: '/s' })).sort(),
    ['AUTORESEARCH_CACHE', 'CUDA_VISIBLE_DEVICES', 'PATH'])
})

t.test('search paths reach the trainer with their absolute entries only: an empty or relative one means the working folder', async t => {
  const env = trainerEnvironment({ PATH: ':/usr/bin:.:bin:/bin:', LD_LIBRARY_PATH: ':/usr/local/cuda/lib64', PYTHONPATH: 'lib:/opt/py', CUDA_HOME: '/usr/local/cuda' })
  t.same(env, { PATH: '/usr/bin:/bin', LD_LIBRARY_PATH: '/usr/local/cuda/lib64', PYTHONPATH: '/opt/py', CUDA_HOME: '/usr/local/cuda' })
})

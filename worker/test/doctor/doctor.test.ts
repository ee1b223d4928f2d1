import t from 'tap'
import { fileURLToPath } from 'node:url'
import { startCoordinator } from '../../../coordinator/test/helpers.ts'
import { checkCoordinator, formatChecks, runDoctor, type Check } from '../../src/doctor/checks.ts'

const trainerDir = fileURLToPath(new URL('../../../trainer/', import.meta.url))

t.test('each problem is printed with its fix, and the verdict counts the failures', async t => {
  const checks: Check[] = [
    { name: 'python + torch', level: 'ok', detail: 'torch 2.8' },
    { name: 'gpu', level: 'warn', detail: 'no CUDA GPU', fix: 'install a CUDA build' },
    { name: 'coordinator', level: 'fail', detail: 'token refused', fix: 'ask the maintainer' },
  ]
  t.equal(formatChecks(checks), [
    '[ok  ] python + torch: torch 2.8',
    '[warn] gpu: no CUDA GPU',
    '       fix: install a CUDA build',
    '[FAIL] coordinator: token refused',
    '       fix: ask the maintainer',
    '1 problem to fix before this worker can contribute',
  ].join('\n'))
})

t.test('a healthy CPU box talking to a coordinator that accepts its token', async t => {
  const c = await startCoordinator()
  t.teardown(c.close)
  await c.campaign('demo')
  const checks = await runDoctor({ url: c.url, token: c.workerToken(), stateDir: t.testdir({}), trainerDir, warnFreeBytes: 0, minFreeBytes: 0 })
  const by = Object.fromEntries(checks.map(x => [x.name, x]))
  t.equal(by['python + torch'].level, 'ok')
  t.equal(by['safety checker'].level, 'ok')
  t.equal(by.disk.level, 'ok')
  t.match(by.disk.detail, /^[\d.]+ GB free at .*; runs are stopped below [\d.]+ GB free$/, 'the floor of free disk below which runs are stopped')
  t.equal(by.coordinator.level, 'ok', by.coordinator.detail)
  t.equal(by['data for demo'].level, 'warn', 'not prepared yet: join will do it')
  t.match(by['data for demo'].fix, /worker join/)
  t.notOk(checks.some(x => x.level === 'fail'), formatChecks(checks))
})

t.test('a refused token and an unreachable coordinator each come with a fix', async t => {
  const c = await startCoordinator()
  t.teardown(c.close)
  const refused = (await checkCoordinator({ url: c.url, token: 'arg_wrk_wrong', stateDir: t.testdir({}), trainerDir }, null))[0]
  t.match(refused, { level: 'fail', detail: /refused the token/, fix: /ask the maintainer for a worker token/ })
  const away = (await checkCoordinator({ url: 'http://127.0.0.1:9', token: 'x', stateDir: t.testdir({}), trainerDir, timeoutMs: 1500 }, null))[0]
  t.match(away, { level: 'fail', detail: /cannot reach/, fix: /is the coordinator running/ })
})

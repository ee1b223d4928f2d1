import t from 'tap'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { execa } from 'execa'
import { findPython } from '@autoresearch-grid/trainer'
import { startCoordinator } from '../../../coordinator/test/helpers.ts'
import { createCampaign } from '../../../coordinator/src/campaigns/campaigns.ts'
import { DATASET_FILES } from '../../../coordinator/src/dataset/manifest.ts'
import { checkCoordinator } from '../../src/doctor/checks.ts'

// `worker doctor` checks each campaign's own data source: a served data set not downloaded yet,
// and climbmix on a Python without pyarrow, each with what to do.
const trainerDir = fileURLToPath(new URL('../../../trainer/', import.meta.url))

t.test('doctor says what a served data set and climbmix need from this worker', async t => {
  const c = await startCoordinator()
  t.teardown(c.close)
  const prepared = join(c.dir, 'prepared')
  await mkdir(prepared)
  for (const name of DATASET_FILES) await writeFile(join(prepared, name), `${name}\n`.repeat(1000))
  await createCampaign(c.app, { name: 'mail', seed: { 'train.py': 'X = 1\n' }, spec: { budgetSeconds: 10, profile: 'cpu-tiny', data: { kind: 'served', label: 'emails' } }, served: { source: 'dir:/x', dir: prepared } })
  await createCampaign(c.app, { name: 'mix', seed: { 'train.py': 'X = 1\n' }, spec: { budgetSeconds: 10, profile: 'cpu-tiny', data: { kind: 'climbmix', shards: 2 } } })
  const python = await findPython()
  const checks = await checkCoordinator({ url: c.url, token: c.workerToken(), stateDir: t.testdir({}), trainerDir }, python)
  const by = Object.fromEntries(checks.map(x => [x.name, x]))
  t.match(by['data for mail'], { level: 'warn', detail: /served by the coordinator, not downloaded yet \(0\.\d MB\)/, fix: /worker join. downloads it/ })
  const pyarrow = (await execa(python.path, ['-c', 'import pyarrow'], { reject: false })).exitCode === 0
  if (pyarrow) t.not(by['data for mix'].level, 'fail', 'pyarrow is here: the generic check applies')
  else t.match(by['data for mix'], { level: 'fail', detail: /climbmix needs pyarrow/, fix: /pip install pyarrow/ })
})

import t from 'tap'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openCoordinator } from '../../src/coordinator.ts'
import { createCampaign } from '../../src/campaigns/campaigns.ts'
import { createWorkerToken } from '../../src/auth/access.ts'
import { currentProgram, setProgram } from '../../src/campaigns/program.ts'
import { hello } from '../../src/units/presence.ts'
import { getWorker } from '../../src/workers/registry.ts'
import { leaseNextUnit, toWorkUnit } from '../../src/units/assign.ts'
import { CPU, SEED_TRAIN_PY } from '../helpers.ts'

// A lease notes the program version its unit is handed out under in the lease's own transaction
// (units/assign.ts, swarm/claim.ts recordUnitContext): a write of its own, in a later batch, made
// every next unit wait one more turn of the event loop (docs/PERFORMANCE.md, "Ninth pass").

t.test('a lease records its unit\'s program version with the lease, and the unit carries that version\'s text', async t => {
  const dir = await mkdtemp(join(tmpdir(), 'arg-lease-ctx-'))
  const app = await openCoordinator(dir)
  t.teardown(async () => { app.close(); await rm(dir, { recursive: true, force: true }) })
  await createCampaign(app, { name: 'demo', seed: { 'train.py': SEED_TRAIN_PY }, spec: { budgetSeconds: 10, profile: 'cpu-tiny', noise: { policy: 'fixed', replications: 0, baselineRuns: 1 } } })
  const v1 = await setProgram(app, 'demo', '# v1\n', { name: 'maintainer', email: 'm@example.org' })
  const contributor = createWorkerToken(app, 'c', 'c@example.org').contributorId
  const { workerId } = hello(app, contributor, { name: 'w', hardware: CPU, fingerprints: {}, version: 't', holding: [] })
  const unit = leaseNextUnit(app, getWorker(app, workerId)!, () => true)!
  const recorded = () => app.db.$client.prepare('select program_version as version from unit_context where unit_id = ?').get(unit.id)
  t.same(recorded(), { version: v1.version }, 'on record as soon as the lease returns, before its message is built')
  // A later edit does not change what this unit was handed out under, nor the text it carries.
  await setProgram(app, 'demo', '# v2\n', { name: 'maintainer', email: 'm@example.org' })
  t.equal((await currentProgram(app, 'demo'))?.text, '# v2\n')
  const message = await toWorkUnit(app, unit)
  t.same(message.program, { version: v1.version, text: '# v1\n' }, 'the message carries the version on record')
  t.same(recorded(), { version: v1.version })
})

import t from 'tap'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openCoordinator } from '../../src/coordinator.ts'
import { createCampaign } from '../../src/campaigns/campaigns.ts'
import { createWorkerToken } from '../../src/auth/access.ts'
import { addHypothesis } from '../../src/hypotheses/add.ts'
import { hello } from '../../src/units/presence.ts'
import { getWorker } from '../../src/workers/registry.ts'
import { leaseNextUnit } from '../../src/units/assign.ts'
import { CPU, SEED_TRAIN_PY } from '../helpers.ts'

// The lease reads which open hypotheses already have a unit on the best in one prepared query
// (units/assign.ts, `onBest`): these hold what the scheduler then makes of it, through the real
// database.

t.test('explorations on the best go to open hypotheses highest priority first, one unit each, then to free exploration', async t => {
  const dir = await mkdtemp(join(tmpdir(), 'arg-lease-hyp-'))
  const app = await openCoordinator(dir)
  t.teardown(async () => { app.close(); await rm(dir, { recursive: true, force: true }) })
  await createCampaign(app, { name: 'demo', seed: { 'train.py': SEED_TRAIN_PY }, spec: { budgetSeconds: 10, profile: 'cpu-tiny', noise: { policy: 'fixed', replications: 0, baselineRuns: 1 } } })
  await createCampaign(app, { name: 'other', seed: { 'train.py': SEED_TRAIN_PY }, spec: { budgetSeconds: 10, profile: 'cpu-tiny', noise: { policy: 'fixed', replications: 0, baselineRuns: 1 } } })
  const low = addHypothesis(app, 'demo', { title: 'wider MLP', priority: 1, source: 'maintainer' }).id
  const high = addHypothesis(app, 'demo', { title: 'deeper model', priority: 5, source: 'maintainer' }).id
  const mid = addHypothesis(app, 'demo', { title: 'longer warmup', priority: 3, source: 'maintainer' }).id
  addHypothesis(app, 'other', { title: 'another campaign idea', priority: 9, source: 'maintainer' })
  const explorations: (string | null)[] = []
  for (let i = 0; explorations.length < 4 && i < 12; i++) {
    const contributor = createWorkerToken(app, `c${i}`, `c${i}@example.org`).contributorId
    const { workerId } = hello(app, contributor, { name: `w${i}`, hardware: CPU, fingerprints: {}, version: 't', holding: [] })
    const unit = leaseNextUnit(app, getWorker(app, workerId)!, c => c.name === 'demo')
    if (unit?.kind === 'explore') explorations.push(unit.hypothesisId)
  }
  t.same(explorations, [high, mid, low, null], 'each open hypothesis once, by priority; then free exploration, never the other campaign\'s')
})

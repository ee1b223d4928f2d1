import t, { type Test } from 'tap'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CampaignSpec } from '@autoresearch-grid/shared'
import { openDb, type Db } from '../../src/db/open.ts'
import { campaigns, experiments, hardwareClasses, measurements, workUnits } from '../../src/db/schema.ts'
import type { Campaign } from '../../src/campaigns/campaigns.ts'
import { carriedEvidenceOf, realRateOfCampaign } from '../../src/units/sequential-inputs.ts'
import type { RatchetPolicy } from '../../src/ratchet/index.ts'

// What a candidate carried onto a newer best inherits from the rows (units/sequential-inputs.ts).
// The origin O: ann's claim on the founding class H, ben's verification there, cat's on the
// approved class K (each class at its own level, P's four runs on each). X is O's change carried
// onto the newer best (a rebase unit that targets O).
const H = 'cpu-x86_64'
const K = 'rtx4090-24g'

let n = 0
function measured(db: Db, who: string, kind: 'baseline' | 'verify' | 'explore' | 'rebase', cls: string, commit: string, parentCommit: string, valBpb: number, id = `e${++n}`, unitId = `u${n}`): string {
  db.insert(experiments).values({ id, unitId, campaign: 'demo', kind, workerId: `w_${who}`, contributorId: who, hardwareClass: cls,
    parentCommit, commit, description: kind, diff: '', sourceHash: 'h', status: kind === 'baseline' || kind === 'verify' ? 'measured' : 'stale', createdAt: n }).run()
  db.insert(measurements).values({ campaign: 'demo', commit, hardwareClass: cls, valBpb, experimentId: id, workerId: `w_${who}`, kind }).run()
  return id
}

async function carried(t: Test, policy: RatchetPolicy, approveK = true) {
  const dir = await mkdtemp(join(tmpdir(), 'arg-carried-'))
  const db = openDb(join(dir, 'coordinator.db'))
  t.teardown(async () => { db.$client.close(); await rm(dir, { recursive: true, force: true }) })
  const spec = CampaignSpec.parse({ budgetSeconds: 300, profile: 'gpu', noise: { priorSigma: 0.01, policy } })
  db.insert(campaigns).values({ name: 'demo', branch: 'autoresearch/demo', spec, bestCommit: 'b' }).run()
  for (const [i, who] of ['p', 'q', 'p', 'q'].entries()) measured(db, who, 'baseline', H, 'P', 'P', 1.0 + [0, 0.01, -0.01, 0][i])
  for (const [i, who] of ['p', 'q', 'p', 'q'].entries()) measured(db, who, 'baseline', K, 'P', 'P', 2.0 + [0, 0.02, -0.02, 0][i])
  if (approveK) db.insert(hardwareClasses).values({ campaign: 'demo', hardwareClass: K, approved: true, approvedBy: 'maintainer' }).run()
  const origin = measured(db, 'ann', 'explore', H, 'O', 'P', 0.96)
  measured(db, 'ben', 'verify', H, 'O', 'P', 0.97)
  measured(db, 'cat', 'verify', K, 'O', 'P', 1.92)
  db.insert(workUnits).values({ id: 'ux', kind: 'rebase', campaign: 'demo', parentCommit: 'b', targetExperiment: origin }).run()
  const x = measured(db, 'ann', 'rebase', H, 'X', 'b', 0.96, 'ex', 'ux')
  const c = db.select().from(campaigns).get() as Campaign
  const exp = db.select().from(experiments).all().find(e => e.id === x)!
  return { db, c, exp }
}

t.test("under pooled and parallel a carried change inherits its origin's verifications on every approved class", async t => {
  for (const policy of ['pooled', 'parallel'] as const) {
    const { db, c, exp } = await carried(t, policy)
    const e = carriedEvidenceOf(db, c, exp)!
    t.same(e.contributorIds, ['ben', 'cat'], `${policy}: cat's run on K goes with the change`)
    // Against its own parent on each class (H at 1.00, K at 2.00): gains of 0.03–0.04 on H and 0.08 on K, in K's σ.
    t.ok(e.all.delta < -0.03 && e.all.delta > -0.045, `${policy}: Δ ${e.all.delta}`)
  }
})

t.test("under sequential it inherits its own class's runs alone; an unapproved class's run never counts", async t => {
  const sequential = await carried(t, 'sequential')
  t.same(carriedEvidenceOf(sequential.db, sequential.c, sequential.exp)!.contributorIds, ['ben'])
  const unapproved = await carried(t, 'pooled', false)
  t.same(carriedEvidenceOf(unapproved.db, unapproved.c, unapproved.exp)!.contributorIds, ['ben'])
})

t.test("a suspect's runs are left out of what is carried, on every class", async t => {
  const { db, c, exp } = await carried(t, 'pooled')
  t.same(carriedEvidenceOf(db, c, exp, new Set(['cat']))!.contributorIds, ['ben'])
  t.same(carriedEvidenceOf(db, c, exp, new Set(['ben']))!.contributorIds, ['cat'])
})

t.test('the observed rate of real gains counts measured candidates only, not reuses of code measured before', async t => {
  const dir = await mkdtemp(join(tmpdir(), 'arg-real-rate-'))
  const db = openDb(join(dir, 'coordinator.db'))
  t.teardown(async () => { db.$client.close(); await rm(dir, { recursive: true, force: true }) })
  const spec = CampaignSpec.parse({ budgetSeconds: 300, profile: 'gpu', noise: { priorSigma: 0.01, policy: 'parallel' } })
  db.insert(campaigns).values({ name: 'demo', branch: 'autoresearch/demo', spec, bestCommit: 'b' }).run()
  const c = { name: 'demo', spec } as unknown as Campaign
  const decided = (status: 'kept' | 'discarded', valBpb: number | null) => db.insert(experiments).values({ id: `e${++n}`, unitId: `u${n}`, campaign: 'demo', kind: 'explore',
    workerId: 'w_a', contributorId: 'a', hardwareClass: H, parentCommit: 'b', commit: `c${n}`, description: 'x', diff: '', sourceHash: 'h', status, valBpb, createdAt: n }).run()
  decided('kept', 0.9)
  for (let i = 0; i < 9; i++) decided('discarded', 1.01)
  const before = realRateOfCampaign(db, c)
  // A worker with nothing left to try reports its parent's code again and again: each is recorded
  // as a discarded exploration without a run (units/reuse.ts).
  for (let i = 0; i < 500; i++) decided('discarded', null)
  t.equal(realRateOfCampaign(db, c), before, 'reuses leave the rate as it was')
  decided('discarded', 1.02)
  t.ok(realRateOfCampaign(db, c) < before, 'a measured candidate still counts')
})

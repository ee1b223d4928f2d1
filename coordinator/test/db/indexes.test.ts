import t from 'tap'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openDb } from '../../src/db/open.ts'

// Counts taken on every decision must not read the rows they count: the campaign's decided
// candidates by status (units/sequential-inputs.ts realRateOfCampaign) visited every experiment
// of the campaign through `experiments_parent` and took 28 % of the coordinator's profile in
// bench/coordinator/ops.ts (docs/PERFORMANCE.md, "Tenth pass").

t.test('the decided candidates are counted from a covering index, on the migrated schema', async t => {
  const dir = await mkdtemp(join(tmpdir(), 'arg-indexes-'))
  const db = openDb(join(dir, 'coordinator.db'))
  t.teardown(async () => { db.$client.close(); await rm(dir, { recursive: true, force: true }) })
  const plan = db.$client.prepare(`explain query plan select status, count(*) from experiments where campaign = ?
    and kind in ('explore', 'rebase') and status in ('kept', 'discarded', 'rejected') and val_bpb is not null group by status`).all('demo') as { detail: string }[]
  t.match(plan.map(p => p.detail).join('\n'), /USING COVERING INDEX experiments_decided/, JSON.stringify(plan))
})

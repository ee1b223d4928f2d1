import t from 'tap'
import { getCampaign } from '../../src/campaigns/campaigns.ts'
import { realRateOfCampaign } from '../../src/units/sequential-inputs.ts'
import { joinWorkers, report, startCoordinator } from '../helpers.ts'

// The sequential policies set the bar to merge from the campaign's observed rate of real gains:
// merges among decided, measured candidates (units/sequential-inputs.ts). An exploration reported
// with its parent's code unchanged is no candidate (rule 0), but its row kept the run's val_bpb, so
// it counted as a decided, measured candidate. Such a report needs no training and stores no code:
// Mallory sent 150 in a few seconds, the rate fell to its floor and the bar to merge rose for
// everyone (the same stall reuses caused before, docs/RATCHET.md). The row keeps the run's metrics;
// its val_bpb, which only measured candidates carry, is left empty.

t.test('explorations reported unchanged do not count as decided candidates in the observed rate of gains', async t => {
  // Room for her 150 reports within one pace window (units/report-pace.ts, which now bounds them too).
  const c = await startCoordinator({ maxOpenUnitsPerContributor: 100 })
  t.teardown(c.close)
  await c.campaign('demo', { policy: 'parallel', baselineRuns: 1, priorSigma: 0.01 })
  const [ben, cat, mallory] = await joinWorkers(c, ['ben', 'cat', 'mallory'])
  t.teardown(() => [ben, cat, mallory].forEach(w => w.close()))
  await ben.api.worker.report.mutate({ workerId: ben.workerId, report: report(await ben.next(), 1.5) })
  const rate = () => realRateOfCampaign(c.app.db, getCampaign(c.app, 'demo')!)
  const before = rate()
  for (let i = 0; i < 150; i++) {
    const u = await mallory.next()
    await mallory.api.worker.report.mutate({ workerId: mallory.workerId, report: report(u, 1.5) }) // the parent's code, as given
  }
  const after = rate()
  t.comment(`RESULT observed rate of gains: ${before} before, ${after} after 150 unchanged reports`)
  t.equal(after, before, 'the rate, and so the bar to merge, is what it was')
  const row = c.app.db.$client.prepare("select val_bpb as v, metrics from experiments where reason = 'no-change' limit 1").get() as { v: number | null; metrics: string }
  t.equal(row.v, null, 'an unchanged run has no val_bpb of a candidate')
  t.match(JSON.parse(row.metrics), { val_bpb: 1.5 }, 'its metrics are on record')
})

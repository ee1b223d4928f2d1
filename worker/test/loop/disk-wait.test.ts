import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createCampaign } from '@autoresearch-grid/coordinator'
import { startCoordinator } from '../../../coordinator/test/helpers.ts'
import { HeuristicAgent } from '../../src/agent/heuristic-agent.ts'
import { joinCoordinator } from '../../src/loop/join.ts'
import { until } from '../../../shared/test/support/until.ts'
import { sharedCorpus } from '../fixtures/corpus.ts'

// A worker whose disk has no room waits before its run (loop/lane.ts, untilRoomOnDisk). It must
// not hold the unit meanwhile: its heartbeats leave the unit out (loop/held.ts), so the lease runs
// out while the worker is connected and beating, and another worker could take it. When room comes
// back, the unit is this worker's again (nobody else asked) and its run counts. The real
// coordinator, `worker join` in-process and the real CPU trainer; only the disk's answer is played.
const trainerDir = fileURLToPath(new URL('../../../trainer/', import.meta.url))
const TRAIN = readFileSync(join(trainerDir, 'train.py'), 'utf8')

t.test('a run waiting for room on the disk lets its lease run out, and counts once the disk has room', async t => {
  // Leases of 2 s + 8 s against heartbeats every 5 s: renewed by every beat, such a lease never runs out.
  const c = await startCoordinator({ leaseMarginSeconds: 8 })
  t.teardown(c.close)
  await createCampaign(c.app, { name: 'demo', seed: { 'train.py': TRAIN }, spec: { budgetSeconds: 2, profile: 'cpu-tiny', vocabSize: 512, noise: { policy: 'fixed', baselineRuns: 1, replications: 0 } } })
  const db = c.app.db.$client
  const expired = () => db.prepare("select payload from events where type = 'lease-expired'").all() as { payload: string }[]
  const lines: string[] = []
  let waits = 0
  const summary = await joinCoordinator({
    url: c.url, token: c.workerToken(), name: 'w-disk', stateDir: join(t.testdir({}), 'w'), dataRoot: (await sharedCorpus()).root, trainerDir,
    agent: new HeuristicAgent(), pipeline: false, maxUnits: 1, log: l => lines.push(l),
    // The first run finds no room until the coordinator has taken its unit back: with the lease
    // renewed all along, that never happens, and tap's timeout fails the test (shared/test/support/until.ts).
    roomOnDisk: async (signal, waiting) => {
      if (waits++ > 0) return
      waiting?.(true)
      try {
        await until('the waiting unit\'s lease to run out', () => expired().length > 0, { everyMs: 200, describe: () => lines.join('\n').slice(-2000) })
      } finally {
        waiting?.(false)
      }
      t.notOk(signal?.aborted, 'the worker was not stopped meanwhile')
    },
  })
  const log = lines.join('\n')
  t.ok(expired().length >= 1, "the waiting unit's lease ran out while its worker was connected and beating") || t.comment(log.slice(-3000))
  t.match(log, /: its lease is left to run out while the disk has no room, so another worker can take it/, 'the worker said why')
  t.equal(summary.units, 1, 'once there was room, the run was made')
  const rows = db.prepare('select status, val_bpb as valBpb from experiments').all() as { status: string; valBpb: number | null }[]
  t.equal(rows.length, 1, 'and reported')
  t.ok(rows[0]?.valBpb !== null && rows[0]?.status !== 'crash', `and counted: ${JSON.stringify(rows)}`)
})

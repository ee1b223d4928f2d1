import t from 'tap'
import { join } from 'node:path'
import type { Report } from '@autoresearch-grid/shared'
import { backoffMs, Deliverer } from '../../src/loop/deliver.ts'
import { Spool } from '../../src/loop/spool.ts'

const report = (unitId: string): Report => ({
  unitId, leaseToken: 'l', status: 'crash', source: { 'train.py': 'x' }, description: 'd', diff: '', metrics: null, logTail: '', agentNotes: '', followUps: [], timings: { agentSeconds: 0, runSeconds: 0 },
})

t.test('redelivery pauses grow exponentially, with jitter, up to a cap', async t => {
  t.equal(backoffMs(0, () => 1), 1000)
  t.equal(backoffMs(3, () => 1), 8000)
  t.equal(backoffMs(3, () => 0), 4000)
  t.equal(backoffMs(20, () => 1), 30_000)
})

t.test('results wait in the spool while sending fails and leave it once delivered, in order', async t => {
  const spool = new Spool(join(t.testdir({}), 'spool'))
  const sent: string[] = []
  let down = true
  const lines: string[] = []
  const d = new Deliverer({
    spool, log: l => lines.push(l), baseMs: 5, capMs: 20,
    send: async item => {
      if (down) throw new Error('socket closed')
      sent.push(item.report.unitId)
      return { experimentId: 'e', decision: 'recorded', duplicate: false }
    },
  })
  await d.push('w', report('u1'))
  await d.push('w', report('u2'))
  // Two failed attempts at least, however long a busy machine takes to make them.
  while (lines.filter(l => /could not deliver \(socket closed\)/.test(l)).length < 2) await new Promise(r => setTimeout(r, 10))
  t.same((await spool.list()).map(s => s.report.unitId).sort(), ['u1', 'u2'], 'kept while the coordinator is away, and retried')
  down = false
  d.wake()
  await d.idle()
  t.same(sent.sort(), ['u1', 'u2'])
  t.same(await spool.list(), [], 'each delivered once')
})

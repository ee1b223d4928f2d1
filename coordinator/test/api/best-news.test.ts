import t from 'tap'
import { startCoordinator, subscribedWorker } from '../helpers.ts'
import { sleep, until } from '../../../shared/test/support/until.ts'

// A feed that was busy while the best moved several times needs only where it is now; every new
// best still reaches every feed (events/bus.ts, api/worker.ts).
t.test('a feed sends the latest best of a campaign once, however many came while it was busy', async t => {
  const c = await startCoordinator()
  t.teardown(c.close)
  await c.campaign('demo')
  const { events } = await subscribedWorker(c, fn => t.teardown(fn))
  await until('the first unit', () => events.some(e => e.type === 'unit'), { everyMs: 20 })
  for (const commit of ['a'.repeat(40), 'b'.repeat(40), 'c'.repeat(40)]) c.app.bus.emit({ type: 'best-changed', campaign: 'demo', commit, valBpb: 1 })
  await until('the news', () => events.some(e => e.type === 'bestChanged'), { everyMs: 20 })
  await sleep(300)
  t.same(events.filter(e => e.type === 'bestChanged'), [{ type: 'bestChanged', campaign: 'demo', commit: 'c'.repeat(40), valBpb: 1 }], 'only the latest')
  c.app.bus.emit({ type: 'best-changed', campaign: 'demo', commit: 'd'.repeat(40), valBpb: 0.9 })
  await until('the next news', () => events.filter(e => e.type === 'bestChanged').length === 2, { everyMs: 20 })
  t.equal(events.filter(e => e.type === 'unit').length, 1, 'news alone hands out no unit to a full feed')
})

import t from 'tap'
import { startCoordinator, subscribedWorker } from '../helpers.ts'
import { sleep, until } from '../../../shared/test/support/until.ts'
import { expireLeases } from '../../src/units/leases.ts'

// A full feed (as many units as its capacity) sleeps on a slow backstop timer (api/worker.ts,
// FULL_FEED_POLLS): what wakes it when one of its leases runs out is the expiry itself.

t.test('a lease that runs out wakes its worker\'s full feed, which leases again at once', async t => {
  // pollMs 2000: a full feed's timer is a minute (it was 10 s), the expiry sweep is left to this test.
  const c = await startCoordinator({ pollMs: 2000 })
  t.teardown(c.close)
  await c.campaign('demo')
  const { units } = await subscribedWorker(c, fn => t.teardown(fn))
  await until('the first unit', () => units.length === 1, { everyMs: 20 })

  // An hour later its lease has run out; the sweep returns the unit to the queue.
  const now = c.app.now
  c.app.now = () => now() + 3_600_000
  t.equal(expireLeases(c.app), 1, 'the lease expired')
  for (const end = Date.now() + 4000; units.length < 2 && Date.now() < end;) await sleep(20)
  t.equal(units.length, 2, 'the feed leased again within seconds, not at its timer')
})

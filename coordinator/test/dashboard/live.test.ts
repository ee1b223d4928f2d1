import t from 'tap'
import { Bus } from '../../src/events/bus.ts'
import { liveEvents, PROGRESS_EVERY_MS, type LiveEvent } from '../../src/dashboard/live.ts'

/** Collects what one dashboard tab of `campaign` hears, with the time each event came. */
function listen(bus: Bus, campaign: string | null) {
  const stop = new AbortController()
  const heard: { e: LiveEvent; at: number }[] = []
  const start = Date.now()
  const done = (async () => { for await (const e of liveEvents(bus, campaign, stop.signal)) heard.push({ e, at: Date.now() - start }) })()
  return { heard, stop: async () => { stop.abort(); await done } }
}

const tick = () => new Promise(r => setImmediate(r))

t.test('a tab hears only its campaign\'s news (and news for every campaign)', async t => {
  const bus = new Bus()
  const tab = listen(bus, 'demo')
  await tick()
  bus.emit({ type: 'experiment', campaign: 'other', experimentId: 'e1', status: 'kept' })
  bus.emit({ type: 'experiment', campaign: 'demo', experimentId: 'e2', status: 'kept' })
  bus.emit({ type: 'work-available', campaign: '*' })
  bus.emit({ type: 'unit-done', workerId: 'w', unitId: 'u' })
  await tick()
  await tab.stop()
  t.same(tab.heard.map(h => h.e), [
    { type: 'experiment', campaign: 'demo', experimentId: 'e2', status: 'kept' },
    { type: 'queue', campaign: '*' },
    { type: 'workers', campaign: null },
  ])
})

t.test('a burst of heartbeats reaches a tab as one event now and one when the second is over', async t => {
  const bus = new Bus()
  const tab = listen(bus, null)
  await tick()
  for (let i = 0; i < 50; i++) bus.emit({ type: 'progress', campaign: 'demo', workerId: `w${i}`, unitId: 'u' })
  bus.emit({ type: 'best-changed', campaign: 'demo', commit: 'c', valBpb: 1 })
  await new Promise(r => setTimeout(r, PROGRESS_EVERY_MS + 200))
  await tab.stop()
  t.same(tab.heard.map(h => h.e.type), ['progress', 'best-changed', 'progress'])
  t.ok(tab.heard[2].at >= PROGRESS_EVERY_MS - 50, `the trailing one came after ${tab.heard[2].at} ms`)
})

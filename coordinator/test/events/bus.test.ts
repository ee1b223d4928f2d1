import t from 'tap'
import { BROADCAST_SLICE, Bus, type BusEvent } from '../../src/events/bus.ts'

const turn = () => new Promise<void>(r => setImmediate(r))
const best = (commit: string): BusEvent => ({ type: 'best-changed', campaign: 'demo', commit, valBpb: 1 })

// All feeds at once held the event loop for as long as 10,000 of them took to wake and send.
t.test('a broadcast reaches a slice of the feeds per turn of the event loop, and every feed in the end, in the order emitted', async t => {
  const bus = new Bus()
  const n = BROADCAST_SLICE * 2 + 7
  const heard: string[][] = Array.from({ length: n }, () => [])
  const feeds = heard.map((log, i) => bus.feed(`w${i}`, e => { if (e.type === 'best-changed') log.push(e.commit) }))
  bus.emit(best('a'))
  bus.emit(best('b'))
  t.equal(heard.filter(h => h.length).length, BROADCAST_SLICE, 'one slice hears the first news at once')
  feeds[n - 1].off()
  for (let i = 0; i < 10; i++) await turn()
  t.same(heard.slice(0, n - 1).filter(h => h.join() !== 'a,b'), [], 'every open feed heard both, the first first')
  t.same(heard[n - 1], [], 'a feed closed before its turn hears nothing')
})

t.test('a worker\'s own events and work-available still reach its feed at once', async t => {
  const bus = new Bus()
  const heard: string[] = []
  for (let i = 0; i < BROADCAST_SLICE * 2; i++) bus.feed(`w${i}`, () => {})
  const mine = bus.feed('me', e => heard.push(e.type))
  mine.hungry = true
  bus.emit(best('a'))
  bus.emit({ type: 'unit-done', workerId: 'me', unitId: 'u' })
  bus.emit({ type: 'work-available', campaign: 'demo' })
  t.same(heard, ['unit-done', 'work-available'], 'before the broadcast\'s later slices')
  for (let i = 0; i < 5; i++) await turn()
  t.same(heard, ['unit-done', 'work-available', 'best-changed'])
})

t.test('a unit cancelled while it ran reaches its own worker\'s feeds only, full or not', async t => {
  const bus = new Bus()
  const heard: Record<string, string[]> = { me: [], other: [] }
  bus.feed('me', e => heard.me.push(e.type))
  bus.feed('other', e => heard.other.push(e.type))
  bus.emit({ type: 'unit-cancelled', workerId: 'me', unitId: 'u', reason: 'its candidate e_1 was rejected: this run is not needed' })
  t.same(heard, { me: ['unit-cancelled'], other: [] })
})

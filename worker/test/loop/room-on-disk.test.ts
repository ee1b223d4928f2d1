import t from 'tap'
import { untilRoomOnDisk } from '../../src/loop/lane.ts'

// A run started on a disk below the floor would be stopped once it wrote its weights (the launcher's
// share rule, sandbox/limits.ts): the worker waits for room before each run instead (loop/lane.ts).
const PETABYTE = 1024 ** 5

t.test('below the floor the worker waits, says so once, and goes on when there is room', async t => {
  const dir = t.testdir({})
  const lines: string[] = []
  let looks = 0
  const waits: boolean[] = []
  // The first three looks see a floor of a petabyte (no disk here has that free), then the default rule.
  await untilRoomOnDisk(dir, () => (++looks <= 3 ? PETABYTE : undefined), l => lines.push(l), undefined, { pollMs: 20, waiting: w => waits.push(w) })
  t.equal(looks, 4, 'it looked until there was room')
  t.same(waits, [true, false], 'it told when the wait started and when it ended')
  t.equal(lines.length, 2, lines.join('\n'))
  t.match(lines[0], /^waiting before the next run: the disk holding .* has [\d.]+ GiB free, and runs are stopped below 1048576\.0 GiB free .*: free some space there, or point --state at a disk with room$/)
  t.equal(lines[1], 'room on the disk again: the next run starts')
})

t.test('with room it returns at once and says nothing; a stop ends the wait', async t => {
  const dir = t.testdir({})
  const lines: string[] = []
  const waits: boolean[] = []
  await untilRoomOnDisk(dir, () => undefined, l => lines.push(l), undefined, { waiting: w => waits.push(w) })
  t.same(lines, [])
  t.same(waits, [], 'no wait, nothing to tell')
  const stop = new AbortController()
  setTimeout(() => stop.abort(), 50)
  await untilRoomOnDisk(dir, () => PETABYTE, l => lines.push(l), stop.signal, { pollMs: 60_000, waiting: w => waits.push(w) })
  t.equal(lines.length, 1, 'it said it waits, and not that it goes on')
  t.same(waits, [true, false], 'a stopped wait ends too')
  t.ok(stop.signal.aborted)
})

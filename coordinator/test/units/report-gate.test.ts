import t from 'tap'
import { Gate, REPORTS_AT_ONCE, reportGate } from '../../src/units/report-gate.ts'
import { joinWorkers, report, startCoordinator } from '../helpers.ts'
import { until } from '../../../shared/test/support/until.ts'

/** A job that runs until `end()` is called; `started` says whether the gate let it begin. */
function job(gate: Gate, log: string[], name: string, fail = false) {
  let end!: () => void
  const ended = new Promise<void>(r => { end = r })
  const state = { started: false, end: () => end() }
  const done = gate.run(async () => {
    state.started = true
    log.push(name)
    await ended
    if (fail) throw new Error(`${name} failed`)
    return name
  })
  return { state, done }
}

t.test('a gate runs at most its limit of jobs at once and starts the others in arrival order', async t => {
  const gate = new Gate(2)
  const log: string[] = []
  const jobs = ['a', 'b', 'c', 'd', 'e'].map(n => job(gate, log, n, n === 'a'))
  await until('two jobs started', () => log.length === 2)
  t.same(log, ['a', 'b'])
  t.same(gate.load, { running: 2, waiting: 3 })
  jobs[0].state.end()
  await t.rejects(jobs[0].done, /a failed/, 'a job that fails is its caller\'s error')
  await until('a failed job freed its place', () => log.length === 3)
  jobs[2].state.end()
  jobs[1].state.end()
  t.equal(await jobs[1].done, 'b')
  await until('both places taken again', () => log.length === 5)
  t.same(log, ['a', 'b', 'c', 'd', 'e'], 'in the order they came')
  t.same(gate.load, { running: 2, waiting: 0 })
  for (const j of jobs.slice(3)) j.state.end()
  t.same(await Promise.all(jobs.slice(2).map(j => j.done)), ['c', 'd', 'e'])
  t.same(gate.load, { running: 0, waiting: 0 })
})

// Without the gate every report that arrived wrote its objects at once, and a burst of them kept
// the event loop from finishing the ones under way (docs/PERFORMANCE.md, "Sixth pass").
t.test('a burst of reports is ingested a few at a time, and every one is answered', async t => {
  const c = await startCoordinator()
  t.teardown(c.close)
  await c.campaign('demo')
  const n = REPORTS_AT_ONCE + 6
  const workers = await joinWorkers(c, Array.from({ length: n + 3 }, (_, i) => `w${i}`))
  t.teardown(() => { for (const w of workers) w.close() })
  const held = await Promise.all(workers.map(async w => ({ w, unit: await w.next() })))
  const explorers = held.filter(h => h.unit.kind === 'explore').slice(0, n)
  t.equal(explorers.length, n, `${n} workers hold an exploration`)
  // Git's commits stall until released: the reports that got in wait there.
  const commit = c.app.git.commit.bind(c.app.git)
  const stalled: (() => void)[] = []
  let stalling = true
  let commits = 0
  c.app.git.commit = async input => {
    // (The store's own commit that ends every diff answer is not a report's.)
    if (input.message !== 'end of diff') commits++
    if (stalling) await new Promise<void>(r => stalled.push(r))
    return commit(input)
  }
  const replies = explorers.map(({ w, unit }, i) =>
    w.api.worker.report.mutate({ workerId: w.workerId, report: report(unit, 3 - i / 100, unit.source['train.py'] + `\n# edit ${i}\n`) }))
  await until('every report reached git or waits its turn', () => commits + reportGate(c.app).load.waiting === n)
  t.equal(commits, REPORTS_AT_ONCE, `only ${REPORTS_AT_ONCE} reports got as far as git`)
  stalling = false
  for (const go of stalled.splice(0)) go()
  const answered = await Promise.all(replies)
  t.equal(answered.filter(r => r.experimentId && !r.duplicate).length, n, 'every report is stored and answered')
  t.equal(commits, n)
  t.same(reportGate(c.app).load, { running: 0, waiting: 0 })
})

import t from 'tap'
import type { AssignmentEvent, Hardware, WorkUnit } from '@autoresearch-grid/shared'
import { CPU, joinWorkers, report, startCoordinator, wsClient } from '../helpers.ts'

// A worker's hardware class is what its latest `hello` says, and a hello that names the units the
// worker holds keeps them leased. Baselines of the best go round by contributor on each class
// (scheduler/next-unit.ts `baselineTurn`), so a contributor with idle workers cannot take them all
// on a class where others work. Mallory's four workers said hello on a class nobody else works on,
// took that class's four baselines (the first comer takes them there), said hello again as the
// busy class, holding them, and reported: the four runs were recorded on the busy class, as many
// of the best's runs there as the turn would have given her over four rounds, at once.

const ARM: Hardware = { ...CPU, cpu: { ...CPU.cpu, arch: 'aarch64' }, hardwareClass: 'cpu-arm64' }

t.test('a unit handed out for one hardware class cannot be reported from another', async t => {
  const c = await startCoordinator()
  t.teardown(c.close)
  await c.campaign('demo', { replications: 1, baselineRuns: 4 })
  const [ben] = await joinWorkers(c, ['ben'])
  t.teardown(ben.close)
  const bens = await ben.next()
  t.equal(bens.kind, 'baseline', 'ben, at work on cpu-x86_64, takes a baseline there')

  const { api, close } = wsClient(c.url, c.workerToken('mallory'))
  t.teardown(close)
  const mallory: { workerId: string; name: string; unit: WorkUnit }[] = []
  for (const name of ['m0', 'm1', 'm2', 'm3']) {
    const { workerId } = await api.worker.hello.mutate({ name, hardware: ARM, fingerprints: {}, version: 't' })
    const unit = await new Promise<WorkUnit>(resolve => {
      const sub = api.worker.assignments.subscribe({ workerId }, { onData: (e: AssignmentEvent) => { if (e.type === 'unit') { sub.unsubscribe(); resolve(e.unit) } } })
    })
    mallory.push({ workerId, name, unit })
  }
  t.same(mallory.map(m => m.unit.kind), ['baseline', 'baseline', 'baseline', 'baseline'], 'on a class nobody else works on, her four workers take its four baselines')

  for (const m of mallory) {
    // The same worker, now saying it has the busy class's hardware, still holding its unit.
    await api.worker.hello.mutate({ name: m.name, hardware: CPU, fingerprints: {}, version: 't', holding: [m.unit.id] })
    await t.rejects(api.worker.report.mutate({ workerId: m.workerId, report: report(m.unit, 1.9) }),
      /handed out for hardware class cpu-arm64.*now registers as cpu-x86_64/, `${m.name}'s report from the other class is refused, saying why`)
    const row = c.app.db.$client.prepare('select state, lease_token as token from work_units where id = ?').get(m.unit.id) as { state: string; token: string }
    t.ok(row.state === 'queued' && row.token !== m.unit.leaseToken, `${m.name}'s unit went back to its class's queue under a new token at the hello`)
  }
  const onBusyClass = c.app.db.$client.prepare(`select count(*) as n from measurements m join workers w on w.id = m.worker_id
    where m.hardware_class = 'cpu-x86_64' and w.name like 'm%'`).get() as { n: number }
  t.comment(`RESULT mallory's runs recorded on cpu-x86_64: ${onBusyClass.n}`)
  t.equal(onBusyClass.n, 0, 'none of her runs is recorded on the busy class')

  const stored = await ben.api.worker.report.mutate({ workerId: ben.workerId, report: report(bens, 1.5) })
  t.match(stored.decision, /measured/, 'a worker on the unit\'s own class reports as before')
})

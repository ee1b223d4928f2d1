import t from 'tap'
import { CPU, startCoordinator, wsClient } from '../helpers.ts'

// A worker name costs one `hello`, and each new name is a row of the workers table for good (and a
// member of the verifier draw's pool while it is seen). Nothing bounded them: a probe of this
// session registered 4,839 names from one token in 5 s (~1,000 a second, 55 MB of data dir). Now a
// hello with a new name is refused once the contributor has `maxActiveWorkersPerContributor`
// workers seen within the hour (default 256); the names it had say hello as before.

const MAX = 12

t.test('a contributor may have a bounded number of workers seen within the hour; a new name past it is refused, known names are not', async t => {
  const c = await startCoordinator({ maxActiveWorkersPerContributor: MAX })
  t.teardown(c.close)
  await c.campaign('demo')
  const mallory = wsClient(c.url, c.workerToken('mallory'))
  t.teardown(mallory.close)
  const hello = (name: string) => mallory.api.worker.hello.mutate({ name, hardware: CPU, fingerprints: {}, version: 't' })
  let registered = 0
  let refused = null as Error | null
  for (let i = 0; i < 3 * MAX && !refused; i++) await hello(`sybil-${i}`).then(() => registered++, (e: Error) => { refused = e })
  t.equal(registered, MAX, `${MAX} names are registered`)
  t.match(refused?.message, new RegExp(`already has ${MAX} workers seen within the hour.*start workers under names they had before`), 'the next new name is refused, saying what to do')
  const rows = c.app.db.$client.prepare("select count(*) as n from workers w join contributors k on k.id = w.contributor_id where k.name = 'mallory'").get() as { n: number }
  t.equal(rows.n, MAX, 'and adds no row')
  t.ok(await hello('sybil-0'), 'a name she had says hello again')
  const ben = wsClient(c.url, c.workerToken('ben'))
  t.teardown(ben.close)
  t.ok(await ben.api.worker.hello.mutate({ name: 'ben-gpu0', hardware: CPU, fingerprints: {}, version: 't' }), 'another contributor\'s new worker is not held back')
})

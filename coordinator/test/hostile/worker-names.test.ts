import t, { type Test } from 'tap'
import { CPU, startCoordinator, wsClient } from '../helpers.ts'

// A worker name costs one `hello`, and each new name is a row of the workers table for good (and a
// member of the verifier draw's pool while it is seen). Nothing bounded them: a probe of this
// session registered 4,839 names from one token in 5 s (~1,000 a second, 55 MB of data dir). Now a
// hello with a new name is refused once the contributor has `maxActiveWorkersPerContributor`
// workers seen within the hour (default 256); the names it had say hello as before.

const MAX = 12

/** A coordinator bounding workers at MAX, with campaign "demo" and a client on Mallory's token. */
async function withMallory(t: Test) {
  const c = await startCoordinator({ maxActiveWorkersPerContributor: MAX })
  t.teardown(c.close)
  await c.campaign('demo')
  const mallory = wsClient(c.url, c.workerToken('mallory'))
  t.teardown(mallory.close)
  return { c, mallory }
}

t.test('a contributor may have a bounded number of workers seen within the hour; a new name past it is refused, known names are not', async t => {
  const { c, mallory } = await withMallory(t)
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

t.test('a contributor saying hello in a loop is paced: twice as many as it may have workers at once, then one a second', async t => {
  // Each hello, under a name known or new, was a transaction and a row of the event log, which
  // nothing prunes: one token added ~1,000 rows a second.
  const { c, mallory } = await withMallory(t)
  const events = () => (c.app.db.$client.prepare("select count(*) as n from events where type = 'worker-hello'").get() as { n: number }).n
  let refused = null as (Error & { data?: { code?: string } }) | null
  let said = 0
  const started = Date.now()
  for (let i = 0; i < 5 * MAX && !refused; i++) await mallory.api.worker.hello.mutate({ name: 'm0', hardware: CPU, fingerprints: {}, version: 't' }).then(() => said++, (e: Error) => { refused = e })
  // The bucket refills one a second, so a slow machine lets a few more through: bounded by the time the loop took.
  const refilled = Math.ceil((Date.now() - started) / 1000)
  t.ok(said >= 2 * MAX && said <= 2 * MAX + refilled, `${said} hellos went through before one was refused (${refilled} s)`)
  t.match(refused?.message, /said hello \d+ times in quick succession.*wait \d+ s/, 'the next is refused, saying how long to wait')
  t.equal(refused?.data?.code, 'TOO_MANY_REQUESTS', 'as a refusal its reconnect loop retries')
  t.equal(events(), said, 'a refused hello logs nothing')
})

import t from 'tap'
import { CPU, httpClient, startCoordinator, wsClient } from '../helpers.ts'
import { LIVE_WORKERS_SHOWN } from '../../src/dashboard/queries.ts'

// A worker name costs a contributor one `hello`. The public worker list (`dashboard.workers`, and
// the /status page every anonymous GET renders) read every worker ever registered, with one query
// each, in the event loop: a token that registered thousands of names made each anonymous page
// view that much work for the coordinator. It shows the most recently seen ones, a bounded number.

const NAMES = 600

t.test(`the public worker list shows at most ${LIVE_WORKERS_SHOWN} workers, the latest seen, however many names one token registered`, async t => {
  // Past the bound on a contributor's active workers (worker-names.test.ts), to show the list's own.
  const c = await startCoordinator({ maxActiveWorkersPerContributor: 2 * NAMES })
  t.teardown(c.close)
  await c.campaign('demo')
  const mallory = wsClient(c.url, c.workerToken('mallory'))
  t.teardown(mallory.close)
  for (let i = 0; i < NAMES; i += 20)
    await Promise.all(Array.from({ length: 20 }, (_, j) => mallory.api.worker.hello.mutate({ name: `sybil-${i + j}`, hardware: CPU, fingerprints: {}, version: 't' })))
  const ben = wsClient(c.url, c.workerToken('ben'))
  t.teardown(ben.close)
  await ben.api.worker.hello.mutate({ name: 'ben-gpu0', hardware: CPU, fingerprints: {}, version: 't' })

  const listed = await httpClient(c.url, null).dashboard.workers.query()
  t.ok(listed.length <= LIVE_WORKERS_SHOWN, `dashboard.workers lists ${listed.length}`)
  t.equal(listed[0]?.name, 'ben-gpu0', 'the latest seen first')
  const page = await (await fetch(`${c.url}/status`)).text()
  const items = page.match(/<li>/g)?.length ?? 0
  t.ok(items <= LIVE_WORKERS_SHOWN, `/status lists ${items}`)
  t.match(page, /ben-gpu0/, 'and shows the worker that just said hello')
})

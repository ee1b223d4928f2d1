import t from 'tap'
import { CPU, httpClient, startCoordinator } from '../helpers.ts'

t.test('worker procedures refuse a missing or wrong token with a message that says what to do', async t => {
  const c = await startCoordinator()
  t.teardown(c.close)
  await t.rejects(httpClient(c.url, null).worker.hello.mutate({ name: 'x', hardware: CPU, fingerprints: {}, version: 't' }), /worker token is required/)
  await t.rejects(httpClient(c.url, 'arg_wrk_nope').worker.hello.mutate({ name: 'x', hardware: CPU, fingerprints: {}, version: 't' }), /worker token is required/)
})

t.test('admin procedures refuse a worker token and accept the admin token', async t => {
  const c = await startCoordinator()
  t.teardown(c.close)
  await c.campaign()
  await t.rejects(httpClient(c.url, c.workerToken()).admin.pause.mutate({ campaign: 'demo' }), /admin token is required/)
  await httpClient(c.url, c.adminToken()).admin.pause.mutate({ campaign: 'demo' })
  t.equal((await httpClient(c.url, null).dashboard.campaign.query({ name: 'demo' }))?.status, 'paused')
})

t.test('the status page escapes names that came from strangers', async t => {
  const c = await startCoordinator()
  t.teardown(c.close)
  await c.campaign()
  await httpClient(c.url, c.workerToken()).worker.hello.mutate({ name: '<script>alert(1)</script>', hardware: CPU, fingerprints: {}, version: 't' })
  const html = await (await fetch(c.url + '/')).text()
  t.notMatch(html, /<script>alert/)
  t.match(html, /&lt;script&gt;alert\(1\)&lt;\/script&gt;/)
})

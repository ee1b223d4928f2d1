import t from 'tap'
import type { AssignmentEvent } from '@autoresearch-grid/shared'
import { createCampaign } from '../../src/campaigns/campaigns.ts'
import { CPU, httpClient, SEED_TRAIN_PY, startCoordinator, wsClient } from '../helpers.ts'

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

t.test('a worker whose data fingerprint differs is told why and how to fix it, and gets no work', async t => {
  const c = await startCoordinator()
  t.teardown(c.close)
  await createCampaign(c.app, { name: 'pinned', seed: { 'train.py': SEED_TRAIN_PY }, spec: { budgetSeconds: 10, profile: 'cpu-tiny', fingerprint: 'ab'.repeat(32) } })
  const { api, close } = wsClient(c.url, c.workerToken())
  t.teardown(close)
  const hello = await api.worker.hello.mutate({ name: 'gpu0', hardware: CPU, fingerprints: { pinned: 'cd'.repeat(32) }, version: 't' })
  t.match(hello.campaigns[0].refused, /data fingerprint cdcdcdcdcdcd… differs .* prepare with the campaign's tokenizer \(GET \/tokenizer\/pinned\)/)
  const first = await new Promise<AssignmentEvent>(resolve => {
    const sub = api.worker.assignments.subscribe({ workerId: hello.workerId, fingerprints: { pinned: 'cd'.repeat(32) } }, { onData: e => { sub.unsubscribe(); resolve(e) } })
  })
  t.equal(first.type, 'idle', 'no unit for numbers that would not be comparable')
  const ok = await api.worker.hello.mutate({ name: 'gpu0', hardware: CPU, fingerprints: { pinned: 'ab'.repeat(32) }, version: 't' })
  t.equal(ok.campaigns[0].refused, null)
})

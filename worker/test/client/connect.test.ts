import t from 'tap'
import { startCoordinator } from '../../../coordinator/test/helpers.ts'
import { connect } from '../../src/client/connect.ts'

// tRPC's WebSocket client opens its socket again for any call it is given after `close`, and then
// reconnects for good (with the coordinator gone: every few seconds, forever). A heartbeat that
// was on its way when `worker join` closed its session did exactly that, and the finished process
// never exited (client/connect.ts).
t.test('a call after close fails at once and opens no socket again', async t => {
  const c = await startCoordinator()
  t.teardown(c.close)
  await c.campaign()
  let opened = 0
  const conn = connect(c.url, c.workerToken(), { onOpen: () => { opened++ } })
  t.equal((await conn.api.worker.campaign.query({ name: 'demo' }))?.name, 'demo', 'a call before close goes through')
  await conn.close()
  await t.rejects(conn.api.worker.campaign.query({ name: 'demo' }), /worker\.campaign: the connection to the coordinator was closed/, 'a call after close fails, saying why')
  t.equal(opened, 1, 'and the socket was opened once, before close')
})

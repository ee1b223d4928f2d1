import t from 'tap'
import { TRPCClientError } from '@trpc/client'
import { CPU, joinWorkers, report, startCoordinator, wsClient } from '../helpers.ts'

// The failed-login lock-out is per address (auth/rate-limit.ts), and it refused every call from a
// locked address, valid token or not, on connections opened long before as well: a contributor
// behind the same NAT as honest ones (a campus, a cloud provider's gateway, an IPv6 /64) sent
// twenty calls with made-up tokens, or twenty admin calls with its own valid worker token, once a
// minute, and every honest worker at that address had its heartbeats and reports refused for as
// long as it went on (fourth red team). A connection that showed a live token before keeps being
// served: it is no guesser. A new connection, or a new HTTP call, is still refused during the
// lock-out, so a lock-out confirms no guess.

const codeOf = (err: unknown) => (err instanceof TRPCClientError ? (err.data as { code?: string } | undefined)?.code : undefined)

t.test('a lock-out of a shared address spares the connections that showed a live token before it', async t => {
  const c = await startCoordinator()
  t.teardown(c.close)
  await c.campaign()
  const [ben] = await joinWorkers(c, ['ben'])
  t.teardown(ben.close)
  const unit = await ben.next()
  await ben.api.worker.heartbeat.mutate({ workerId: ben.workerId, units: [{ unitId: unit.id, leaseToken: unit.leaseToken, progress: null }] })

  // Mallory, at the same address, with her own valid worker token, asks for admin procedures.
  const mallory = wsClient(c.url, c.workerToken('mallory'))
  t.teardown(mallory.close)
  for (let i = 0; i < 20; i++) await mallory.api.admin.pause.mutate({ campaign: 'demo' }).catch(() => null)
  const locked = await mallory.api.admin.pause.mutate({ campaign: 'demo' }).then(() => null, e => e)
  t.equal(codeOf(locked), 'TOO_MANY_REQUESTS', 'the address is locked out')

  const beat = await ben.api.worker.heartbeat.mutate({ workerId: ben.workerId, units: [{ unitId: unit.id, leaseToken: unit.leaseToken, progress: null }] }).then(r => r, e => e)
  t.same(beat.cancelled, [], 'ben\'s heartbeat on his open connection still renews his lease')
  const reply = await ben.api.worker.report.mutate({ workerId: ben.workerId, report: report(unit, 1.5) }).then(r => r, e => e)
  t.ok(reply.experimentId, 'and his report is taken')

  const fresh = wsClient(c.url, c.workerToken('cat'))
  t.teardown(fresh.close)
  const refused = await fresh.api.worker.hello.mutate({ name: 'c0', hardware: CPU, fingerprints: {}, version: 't' }).then(() => null, e => e)
  t.equal(codeOf(refused), 'TOO_MANY_REQUESTS', 'a new connection from the address waits out the lock-out, valid token or not')
})

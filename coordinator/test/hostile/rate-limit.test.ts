import t from 'tap'
import { addressKey, FailedAuthLimiter } from '../../src/auth/rate-limit.ts'

const settings = { maxFailures: 20, windowMs: 60_000, blockMs: 60_000, maxAddresses: 100 }

t.test('the 20th failure within a minute locks the address out for a minute', async t => {
  let now = 0
  const l = new FailedAuthLimiter(settings, () => now)
  for (let i = 1; i < 20; i++) { now += 100; t.equal(l.fail('10.0.0.1'), false) }
  t.equal(l.retryAfterMs('10.0.0.1'), 0, '19 failures: still allowed')
  t.equal(l.fail('10.0.0.1'), true, 'the 20th locks it out')
  t.equal(l.retryAfterMs('10.0.0.1'), 60_000)
  t.equal(l.retryAfterMs('10.0.0.2'), 0, 'other addresses are not affected')
  now += 59_999
  t.equal(l.retryAfterMs('10.0.0.1'), 1)
  now += 1
  t.equal(l.retryAfterMs('10.0.0.1'), 0, 'and lets it in again afterwards')
})

t.test('failures older than the window do not count', async t => {
  let now = 0
  const l = new FailedAuthLimiter(settings, () => now)
  for (let i = 0; i < 19; i++) l.fail('10.0.0.1')
  now += 60_001
  t.equal(l.fail('10.0.0.1'), false, 'a slow guesser is not locked out')
  t.equal(l.retryAfterMs('10.0.0.1'), 0)
})

t.test('failures while locked out do not extend the lock-out', async t => {
  let now = 0
  const l = new FailedAuthLimiter(settings, () => now)
  for (let i = 0; i < 20; i++) l.fail('10.0.0.1')
  now += 30_000
  for (let i = 0; i < 50; i++) l.fail('10.0.0.1')
  t.equal(l.retryAfterMs('10.0.0.1'), 30_000)
})

t.test('memory is bounded: a flood of addresses keeps at most maxAddresses entries, lock-outs last', async t => {
  let now = 0
  const l = new FailedAuthLimiter(settings, () => now)
  for (let i = 0; i < 20; i++) l.fail('10.9.9.9')
  for (let i = 0; i < 10_000; i++) { now += 1; l.fail(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`) }
  t.ok(l.size <= settings.maxAddresses, `${l.size} entries kept`)
  t.ok(l.retryAfterMs('10.9.9.9') > 0, 'the locked-out address is remembered over the ones that only failed')
})

t.test('one host counts once: IPv4 also when mapped into IPv6, IPv6 by its /64', async t => {
  t.equal(addressKey('::ffff:127.0.0.1'), '127.0.0.1')
  t.equal(addressKey('127.0.0.1'), '127.0.0.1')
  t.equal(addressKey('2001:db8:1:2:aaaa::1'), addressKey('2001:0db8:0001:0002:ffff:ffff:ffff:ffff'))
  t.not(addressKey('2001:db8:1:2::1'), addressKey('2001:db8:1:3::1'))
  t.equal(addressKey('::1'), '0:0:0:0::/64')
  t.equal(addressKey(''), '')
})

import t from 'tap'
import { closingReason } from '../../src/units/judge.ts'
import type { Decision } from '../../src/ratchet/index.ts'

// Which decisions stop a candidate's running verifications (units/judge.ts closingReason): only
// those after which its runs count for nothing. An honest worker never loses a run that counts.

const KINDS: Decision['kind'][] = ['reject', 'await-baseline', 'hold', 'discard', 'verify', 'stale', 'merge']

t.test('rejected and discarded candidates stop their runs under every policy; pending and merged ones never do', async t => {
  for (const policy of ['fixed', 'sequential', 'pooled', 'parallel', undefined] as const) {
    const stopping = KINDS.filter(k => closingReason(k, policy) !== null)
    t.same(stopping, policy === 'fixed' || policy === undefined ? ['reject', 'discard', 'stale'] : ['reject', 'discard'], `${policy ?? 'default (fixed)'}`)
  }
})

t.test('a stale candidate keeps its runs where they feed the evidence it carries', async t => {
  t.match(closingReason('stale', 'fixed'), /without its runs/)
  t.equal(closingReason('stale', 'parallel'), null)
  t.equal(closingReason('merge', 'fixed'), null, 'nor does a merged one')
})

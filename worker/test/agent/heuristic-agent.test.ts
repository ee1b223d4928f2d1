import t from 'tap'
import type { WorkUnit } from '@autoresearch-grid/shared'
import { HeuristicAgent, reapplyConstants } from '../../src/agent/heuristic-agent.ts'

const SOURCE = 'DEPTH = 8  # blocks\nMATRIX_LR = 0.04  # Muon\nEMBEDDING_LR = 0.6\nWARMDOWN_FRAC = 0.5\n'
const unit = (over: Partial<WorkUnit> = {}): WorkUnit => ({
  id: 'u1', kind: 'explore', campaign: 'demo', profile: 'gpu', budgetSeconds: 3, leaseToken: 'l', leaseExpiresAt: 0, parentCommit: 'p',
  source: { 'train.py': SOURCE }, editableFiles: ['train.py'], hypothesis: null, referenceDiff: null, triedOnParent: [], ...over,
})
const begin = (u: WorkUnit, seed = 1) => new HeuristicAgent().begin({ unit: u, files: { ...u.source }, program: '', seed, dir: '/x' })

t.test('the same unit and seed always give the same proposal; the hypothesis steers it', async t => {
  t.same(await begin(unit()).propose(), await begin(unit()).propose())
  const steered = await begin(unit({ hypothesis: { id: 'h', title: 'lower the embedding learning rate', body: '' } })).propose()
  t.match(steered.description, /^EMBEDDING_LR 0\.6 -> 0\.4/)
})

t.test('a repair after a crash is a different mutation', async t => {
  const s = begin(unit())
  const first = await s.propose()
  const second = await s.repair({ kind: 'crash', error: 'exited with code 1', logTail: '', attempt: 1 })
  t.ok(second)
  t.not(second!.description, first.description)
  t.match(second!.rationale, /^after .* failed \(exited with code 1\)/)
  t.equal(s.usage().attempts, 2)
})

t.test('a rebase unit re-applies the constants of its reference diff to the new source', async t => {
  const diff = '--- a/train.py\n+++ b/train.py\n-MATRIX_LR = 0.04  # Muon\n+MATRIX_LR = 0.06  # Muon\n'
  const moved = SOURCE.replace('DEPTH = 8', 'DEPTH = 10')
  const p = await begin(unit({ kind: 'rebase', source: { 'train.py': moved }, referenceDiff: diff })).propose()
  t.equal(p.files['train.py'], moved.replace('MATRIX_LR = 0.04', 'MATRIX_LR = 0.06'))
  t.equal(p.description, 're-applied: MATRIX_LR 0.04 -> 0.06')
  t.equal(reapplyConstants(SOURCE, '+NOT_THERE = 1\n'), null)
})

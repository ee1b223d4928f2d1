import t from 'tap'
import { constantChanges, changedConstant, datasetId, describeSource, prepareSourceFlags, CampaignSpec } from '../src/index.ts'
import { createHash } from 'node:crypto'

t.test('constantChanges reads the constants a diff changes, whatever the comments say', async t => {
  const diff = ['--- a/train.py', '+++ b/train.py', '@@ -59,3 +59,3 @@', '-MATRIX_LR = 0.04  # Muon', '+MATRIX_LR = 0.06  # Muon, raised', ' EMBEDDING_LR = 0.6',
    '-DEPTH = 8', '+DEPTH = 8  # same value, new comment', '+NEW_KNOB = 3', '-    x = 1', '+    x = 2'].join('\n')
  t.same(constantChanges(diff), ['MATRIX_LR 0.04 -> 0.06', 'NEW_KNOB = 3 (new)'])
  t.equal(changedConstant('MATRIX_LR 0.04 -> 0.06'), 'MATRIX_LR')
  t.same(constantChanges(''), [])
})

t.test('a data source in the spec: embedded by default, prepare.py flags for the sources workers prepare themselves', async t => {
  t.same(CampaignSpec.parse({ budgetSeconds: 5, profile: 'cpu-tiny' }).data, { kind: 'embedded' }, 'specs made before it existed read as embedded')
  t.same(prepareSourceFlags({ kind: 'climbmix', shards: 4 }), ['--source', 'climbmix', '--num-shards', '4'])
  t.equal(prepareSourceFlags({ kind: 'served', label: 'emails' }), null, 'a served source is downloaded, not prepared')
  t.equal(describeSource({ kind: 'climbmix', shards: 1 }), 'climbmix (1 shard)')
})

t.test('a data set id does not depend on the order of its files', async t => {
  const h = (s: string) => createHash('sha256').update(s).digest('hex')
  const a = { name: 'a.bin', size: 1, sha256: '1'.repeat(64) }
  const b = { name: 'b.bin', size: 2, sha256: '2'.repeat(64) }
  t.equal(datasetId([a, b], h), datasetId([b, a], h))
  t.not(datasetId([a, b], h), datasetId([a, { ...b, size: 3 }], h))
})

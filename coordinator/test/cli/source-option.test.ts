import t from 'tap'
import { parseSourceOption } from '../../src/campaigns/source-option.ts'

// `coordinator campaign create --source … [--num-shards N]`: what the campaign's spec records and
// what prepare.py is given.
t.test('each source becomes the spec\'s data source and prepare.py\'s flags; bad input says what to write', async t => {
  t.same(parseSourceOption('embedded'), { data: { kind: 'embedded' }, prepareSource: 'embedded' })
  t.same(parseSourceOption('climbmix'), { data: { kind: 'climbmix', shards: 10 }, prepareSource: 'climbmix', numShards: 10 })
  t.same(parseSourceOption('climbmix', 3), { data: { kind: 'climbmix', shards: 3 }, prepareSource: 'climbmix', numShards: 3 })
  t.same(parseSourceOption('dir:/data/emails/'), { data: { kind: 'served', label: 'emails' }, prepareSource: 'dir:/data/emails' }, 'a folder is served, under its name')
  t.throws(() => parseSourceOption('dir:'), /needs a folder, e.g. --source dir:\/data\/emails/)
  t.throws(() => parseSourceOption('s3://bucket'), /use embedded, climbmix \(with --num-shards N\) or dir:PATH/)
  t.throws(() => parseSourceOption('embedded', 4), /--num-shards is for --source climbmix/)
  t.throws(() => parseSourceOption('climbmix', 0), /between 1 and 6542/)
})

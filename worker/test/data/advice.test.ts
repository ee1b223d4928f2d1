import t from 'tap'
import { adviceFor } from '../../src/data/campaign-data.ts'

// What a worker that cannot prepare a campaign's data is told to do, from what went wrong.
t.test('each way preparing can fail comes with what to do about it', async t => {
  const climbmix = { kind: 'climbmix' as const, shards: 10 }
  t.match(adviceFor(climbmix, 'error: reading .parquet needs pyarrow: `pip install pyarrow`'), /install pyarrow for the trainer's Python/)
  t.match(adviceFor(climbmix, 'error: the disk holding /x is full: free space there'), /free disk space under the worker's --state folder/)
  t.match(adviceFor(climbmix, 'error: download of https://h/shard_00000.parquet failed after 6 attempts: <urlopen error [Errno -3] Temporary failure in name resolution>'), /needs HTTPS access to the climbmix shards/)
  t.match(adviceFor({ kind: 'embedded' }, 'error: embedded corpus not found: run from inside the repository'), /pnpm install/)
  t.match(adviceFor({ kind: 'embedded' }, 'something else'), /worker doctor/)
})

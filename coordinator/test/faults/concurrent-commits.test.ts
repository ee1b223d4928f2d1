import t from 'tap'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { GitStore } from '../../src/git/store.ts'

// Reports from different workers are stored at the same time: each one's commit must hold its own
// files, whatever else the store is doing. (Found by kill-coordinator.test.ts: a restart failed on
// a merge commit whose tree had no train.py.)
const COMMITS = 24

t.test('commits written at the same time each hold exactly their own files', async t => {
  const dir = await mkdtemp(join(tmpdir(), 'arg-git-race-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const git = await GitStore.open(dir)
  const seed = await git.commit({ files: { 'train.py': 'seed\n' }, parents: [], message: 'seed', author: { name: 'a', email: 'a@x' } })
  const texts = Array.from({ length: COMMITS }, (_, i) => `DEPTH = ${i}\n`.repeat(1 + (i % 5)))
  const commits = await Promise.all(texts.map((text, i) =>
    git.commit({ files: { 'train.py': text }, parents: [seed], message: `c${i}`, author: { name: `w${i}`, email: `w${i}@x` } })))
  const read = await Promise.all(commits.map(c => git.readFile(c, 'train.py').catch(err => `<${(err as Error).message.split('\n')[0]}>`)))
  const wrong = read.map((text, i) => (text === texts[i] ? null : { i, got: text.slice(0, 60) })).filter(Boolean)
  t.same(wrong, [], `all ${COMMITS} concurrent commits hold their own train.py`)
  t.comment(`RESULT concurrent-commits: commits=${COMMITS} wrong=${wrong.length}`)
})

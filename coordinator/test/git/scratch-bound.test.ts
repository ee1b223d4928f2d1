import t from 'tap'
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { GitStore } from '../../src/git/store.ts'

// A burst of reports faster than git writes objects: the store hands git a bounded number of
// scratch files at once and the rest wait their turn, each still getting its own commit.
const COMMITS = 300

t.test('a burst of commits larger than the scratch pool: each holds its own files, and the pool stays bounded', async t => {
  const dir = await mkdtemp(join(tmpdir(), 'arg-git-burst-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const git = await GitStore.open(dir)
  t.teardown(() => git.close())
  const seed = await git.commit({ files: { 'train.py': 'seed\n' }, parents: [], message: 'seed', author: { name: 'a', email: 'a@x' } })
  const texts = Array.from({ length: COMMITS }, (_, i) => `LR = ${i}\n`.repeat(1 + (i % 7)))
  const commits = await Promise.all(texts.map((text, i) =>
    git.commit({ files: { 'train.py': text }, parents: [seed], message: `c${i}`, author: { name: `w${i}`, email: `w${i}@x` } })))
  const read = await Promise.all(commits.map(c => git.readFile(c, 'train.py')))
  t.equal(read.filter((text, i) => text !== texts[i]).length, 0, `all ${COMMITS} commits hold their own train.py`)
  t.equal(new Set(commits).size, COMMITS, 'and are distinct')
  const scratch = await readdir(join(dir, 'arg-scratch'))
  t.ok(scratch.length > 1 && scratch.length <= 64, `scratch files in use at once stayed bounded (${scratch.length})`)
})

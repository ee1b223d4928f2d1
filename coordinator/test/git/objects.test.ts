import t from 'tap'
import { execFileSync } from 'node:child_process'
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { GitStore } from '../../src/git/store.ts'
import { deflateOptions, LooseObjects, objectBytes, objectId, type ObjectFormat } from '../../src/git/objects.ts'

// The store writes blobs, trees and commits itself (git/objects.ts), not through git: these tests
// hold what it writes against git's own plumbing, `git log` and `git fsck --strict`.

async function repo(t: { teardown(fn: () => unknown): void }, format: ObjectFormat = 'sha1') {
  const dir = await mkdtemp(join(tmpdir(), 'arg-objects-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const git = (args: string[], input?: string) => execFileSync('git', args, { cwd: dir, input, encoding: 'utf8', env: { PATH: process.env.PATH!, HOME: dir, GIT_CONFIG_NOSYSTEM: '1' } })
  git(['init', '--quiet', '--bare', `--object-format=${format}`, '.'])
  return { dir, git }
}

for (const format of ['sha1', 'sha256'] as const) {
  t.test(`${format}: blobs, trees and commits get the ids git's plumbing gives them, and git fsck --strict is content`, async t => {
    const { dir, git } = await repo(t, format)
    const objects = new LooseObjects(dir, format)
    const text = 'DEPTH = 4\nLR = 0.02  # é, ünïcode\n'
    const blob = objects.blob(text)
    t.equal(blob, git(['hash-object', '--stdin'], text).trim(), 'a blob: hash-object agrees')
    t.equal(git(['cat-file', 'blob', blob]), text, 'git reads it back')
    const other = objects.blob('x = 1\n')
    // Out of order on purpose: a tree is sorted by the bytes of its names ('B' < '_' < 't').
    const entries = [{ name: 'train.py', id: blob }, { name: 'B.py', id: other }, { name: '_x.py', id: other }]
    const tree = objects.tree(entries)
    t.equal(tree, git(['mktree'], entries.map(e => `100644 blob ${e.id}\t${e.name}\n`).join('')).trim(), 'a tree: mktree agrees')
    const when = '1700000000 +0000'
    const commit = objects.commit(`tree ${tree}\nauthor Ada <ada@x> ${when}\ncommitter autoresearch-grid <c@x> ${when}\n\ntry a thing\n`)
    const env = { GIT_AUTHOR_NAME: 'Ada', GIT_AUTHOR_EMAIL: 'ada@x', GIT_AUTHOR_DATE: when, GIT_COMMITTER_NAME: 'autoresearch-grid', GIT_COMMITTER_EMAIL: 'c@x', GIT_COMMITTER_DATE: when }
    const theirs = execFileSync('git', ['commit-tree', tree, '-m', 'try a thing'], { cwd: dir, encoding: 'utf8', env: { PATH: process.env.PATH!, HOME: dir, ...env } }).trim()
    t.equal(commit, theirs, 'a commit: commit-tree agrees')
    git(['update-ref', 'refs/heads/main', commit])
    t.equal(git(['log', '--format=%an|%s', 'main']).trim(), 'Ada|try a thing', 'git log reads the branch')
    t.equal(git(['fsck', '--strict', '--full', '--no-dangling']).trim(), '', 'git fsck --strict finds nothing wrong')
    t.equal(objects.blob(text), blob, 'writing an object that is there already gives its id again')
  })
}

t.test('a store on a SHA-256 repository writes commits git can read', async t => {
  const { dir, git } = await repo(t, 'sha256')
  const store = await GitStore.open(dir)
  t.teardown(() => store.close())
  const seed = await store.commit({ files: { 'train.py': 'LR = 1\n' }, parents: [], message: 'seed', author: { name: 'a', email: 'a@x' } })
  t.equal(seed.length, 64)
  const next = await store.commit({ files: { 'train.py': 'LR = 2\n' }, parents: [seed], message: 'two', author: { name: 'b', email: 'b@x' } })
  await store.setRef('refs/heads/main', next)
  t.equal(git(['log', '--format=%s', 'main']), 'two\nseed\n')
  t.equal(await store.readFile(next, 'train.py'), 'LR = 2\n')
  t.equal(git(['fsck', '--strict', '--full', '--no-dangling']).trim(), '')
})

// Reports arrive in bursts: objects written side by side must each land whole.
const COMMITS = 300

t.test('a burst of commits at once: each holds its own files, every ref reads back, and git fsck is content', async t => {
  const { dir, git } = await repo(t)
  const store = await GitStore.open(dir)
  t.teardown(() => store.close())
  const seed = await store.commit({ files: { 'train.py': 'seed\n' }, parents: [], message: 'seed', author: { name: 'a', email: 'a@x' } })
  const texts = Array.from({ length: COMMITS }, (_, i) => `LR = ${i % 50}\n`.repeat(1 + (i % 7)))
  const commits = await Promise.all(texts.map((text, i) =>
    store.commit({ files: { 'train.py': text }, parents: [seed], message: `c${i}`, author: { name: `w${i}`, email: `w${i}@x` } })))
  await Promise.all(commits.map((c, i) => store.setRef(`refs/experiments/e${i}`, c)))
  const read = await Promise.all(commits.map(c => store.readFile(c, 'train.py')))
  t.equal(read.filter((text, i) => text !== texts[i]).length, 0, `all ${COMMITS} commits hold their own train.py`)
  t.equal(new Set(commits).size, COMMITS, 'and are distinct')
  t.equal(git(['for-each-ref', '--format=%(subject)', 'refs/experiments/']).split('\n').filter(Boolean).length, COMMITS, 'git log sees every ref')
  t.equal(git(['fsck', '--strict', '--full', '--no-dangling']).trim(), '', 'git fsck --strict finds nothing wrong')
})

t.test('a temporary file left by an earlier process with the same id is stepped over, not reused', async t => {
  const { dir, git } = await repo(t)
  const text = 'LR = 0.5\n'
  const id = objectId('sha1', objectBytes('blob', Buffer.from(text)))
  const folder = join(dir, 'objects', id.slice(0, 2))
  mkdirSync(folder, { recursive: true })
  const leftover = join(folder, `tmp_obj_arg_${process.pid}_0`)
  writeFileSync(leftover, 'half an object')
  t.equal(new LooseObjects(dir, 'sha1').blob(text), id)
  t.equal(git(['cat-file', 'blob', id]), text, 'the object is whole')
  t.equal(readFileSync(leftover, 'utf8'), 'half an object', 'the leftover is untouched')
  t.same(readdirSync(folder).sort(), [id.slice(2), `tmp_obj_arg_${process.pid}_0`].sort(), 'and no other temporary file stays')
})

t.test('objects of every size round the window sizes git reads back whole, and git fsck --strict is content', async t => {
  const { dir, git } = await repo(t)
  const objects = new LooseObjects(dir, 'sha1')
  // Around each window size (512 B ... 32 KB) and past the largest: repeats far apart test the window.
  const sizes = [0, 1, 255, 256, 257, 511, 512, 513, 4095, 4096, 16_383, 16_384, 32_767, 32_768, 40_000, 100_000]
  for (const size of sizes) {
    const line = (i: number) => `LR_${i % 97} = ${(i * 7919) % 1000}  # ${'x'.repeat(i % 13)}\n`
    let text = ''
    for (let i = 0; text.length < size; i++) text += line(i)
    text = text.slice(0, size)
    const id = objects.blob(text)
    t.equal(id, git(['hash-object', '--stdin'], text).trim(), `${size} bytes: hash-object agrees`)
    t.equal(git(['cat-file', 'blob', id]), text, `${size} bytes: git reads it back`)
  }
  t.same(deflateOptions(300), { level: 1, windowBits: 9, memLevel: 2 })
  t.same(deflateOptions(28_000), { level: 1, windowBits: 15, memLevel: 8 })
  t.equal(git(['fsck', '--strict', '--full', '--no-dangling']).trim(), '', 'git fsck --strict finds nothing wrong')
})

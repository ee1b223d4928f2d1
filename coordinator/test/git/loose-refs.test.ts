import t from 'tap'
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { GitStore } from '../../src/git/store.ts'
import { isSimpleRef, LooseRefs, removeStaleLocks } from '../../src/git/loose-refs.ts'

// The store writes plain refs itself (git/loose-refs.ts), not through update-ref: these tests hold
// what it writes against git's own for-each-ref, rev-parse, update-ref and fsck.

async function repo(t: { teardown(fn: () => unknown): void }) {
  const dir = await mkdtemp(join(tmpdir(), 'arg-refs-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const git = (args: string[], input?: string) => execFileSync('git', args, { cwd: dir, input, encoding: 'utf8', env: { PATH: process.env.PATH!, HOME: dir, GIT_CONFIG_NOSYSTEM: '1' } })
  git(['init', '--quiet', '--bare', '.'])
  const store = await GitStore.open(dir)
  t.teardown(() => store.close())
  const commit = (text: string) => store.commit({ files: { 'train.py': text }, parents: [], message: text, author: { name: 'a', email: 'a@x' } })
  return { dir, git, store, commit }
}

t.test('a ref written here is the one git reads, and git fsck --strict is content', async t => {
  const { git, store, commit } = await repo(t)
  const a = await commit('a\n')
  const b = await commit('b\n')
  await Promise.all(Array.from({ length: 20 }, (_, i) => store.setRef(`refs/experiments/e${i}`, i % 2 ? a : b)))
  t.equal(git(['for-each-ref', '--format=%(objectname) %(refname)', 'refs/experiments/']).split('\n').filter(Boolean).length, 20, 'for-each-ref lists every ref')
  t.equal(git(['rev-parse', 'refs/experiments/e1']).trim(), a)
  t.equal(await store.resolve('refs/experiments/e2'), b, 'resolve reads it')
  await store.setRef('refs/experiments/e1', b)
  t.equal(git(['rev-parse', 'refs/experiments/e1']).trim(), b, 'a ref moves, unconditionally')
  t.equal(git(['fsck', '--strict', '--full', '--no-dangling']).trim(), '', 'git fsck --strict finds nothing wrong')
})

t.test('a loose ref written here overrides the same ref packed by git, and git can move and delete it after', async t => {
  const { git, store, commit } = await repo(t)
  const a = await commit('a\n')
  const b = await commit('b\n')
  git(['update-ref', 'refs/heads/main', a])
  git(['pack-refs', '--all'])
  await store.setRef('refs/heads/main', b)
  t.equal(git(['rev-parse', 'refs/heads/main']).trim(), b, 'the loose ref wins over packed-refs')
  git(['update-ref', 'refs/heads/main', a, b])
  t.equal(await store.resolve('refs/heads/main'), a, 'update-ref moves it with its old value checked')
  await store.setRef('refs/experiments/x', a)
  await store.deleteRef('refs/experiments/x')
  t.equal(await store.resolve('refs/experiments/x'), null, 'deleteRef removes it')
})

t.test('a ref to an object git packed, or with a name outside the plain subset, goes to update-ref and still lands', async t => {
  const { dir, git, store, commit } = await repo(t)
  const a = await commit('a\n')
  git(['update-ref', 'refs/heads/keep', a])
  git(['repack', '-a', '-d', '--quiet'])
  git(['prune-packed'])
  t.notOk(existsSync(join(dir, 'objects', a.slice(0, 2), a.slice(2))), 'the commit is no longer a loose object')
  await store.setRef('refs/experiments/packed', a)
  t.equal(git(['rev-parse', 'refs/experiments/packed']).trim(), a)
  await store.setRef('refs/heads/with@sign', a)
  t.equal(git(['rev-parse', 'refs/heads/with@sign']).trim(), a)
  await t.rejects(store.setRef('refs/experiments/missing', '1'.repeat(40)), 'a missing object is refused (by update-ref)')
})

t.test('a ref whose lock another writer holds is refused and left alone, as update-ref would', async t => {
  const { dir, git, commit } = await repo(t)
  const a = await commit('a\n')
  const b = await commit('b\n')
  const refs = new LooseRefs(dir)
  refs.write('refs/experiments/held', a)
  writeFileSync(join(dir, 'refs/experiments/held.lock'), '')
  t.throws(() => refs.write('refs/experiments/held', b), /held\.lock exists/)
  t.equal(git(['rev-parse', 'refs/experiments/held']).trim(), a, 'the ref keeps its value')
  t.ok(existsSync(join(dir, 'refs/experiments/held.lock')), 'and the other writer keeps its lock')
})

t.test('a ref that would replace a folder of refs fails and leaves no lock behind', async t => {
  const { dir, commit } = await repo(t)
  const a = await commit('a\n')
  mkdirSync(join(dir, 'refs/experiments/dir'), { recursive: true })
  writeFileSync(join(dir, 'refs/experiments/dir/inner'), `${a}\n`)
  const refs = new LooseRefs(dir)
  t.throws(() => refs.write('refs/experiments/dir', a))
  t.notOk(existsSync(join(dir, 'refs/experiments/dir.lock')))
})

t.test('only plain ref names are written here', async t => {
  for (const ok of ['refs/experiments/e_1-x', 'refs/heads/autoresearch/demo', 'refs/heads/v1.2']) t.ok(isSimpleRef(ok), ok)
  for (const bad of ['HEAD', 'refs', 'refs/', 'refs//x', 'refs/../x', 'refs/x..y', 'refs/.hidden', 'refs/x.lock', 'refs/x.', 'refs/a b', 'refs/a@{1}', '/refs/x', 'refs/x/'])
    t.notOk(isSimpleRef(bad), bad)
})

t.test('a ref lock a crashed process left is removed when the store opens, so the branch can move again', async t => {
  const { dir, git, store, commit } = await repo(t)
  const a = await commit('a\n')
  const b = await commit('b\n')
  await store.setRef('refs/heads/autoresearch/demo', a)
  store.close()
  const lock = join(dir, 'refs/heads/autoresearch/demo.lock')
  writeFileSync(lock, `${b}\n`)
  const old = new Date(Date.now() - 60_000)
  utimesSync(lock, old, old)
  const young = join(dir, 'refs/heads/other.lock')
  writeFileSync(young, `${b}\n`)
  setTimeout(() => rmSync(young, { force: true }), 300) // a git process of the crashed one, ending
  const reopened = await GitStore.open(dir)
  t.teardown(() => reopened.close())
  t.notOk(existsSync(lock), 'the stale lock is gone')
  await reopened.setRef('refs/heads/autoresearch/demo', b)
  t.equal(git(['rev-parse', 'refs/heads/autoresearch/demo']).trim(), b, 'and the branch moves')
  t.same(await removeStaleLocks(dir), [], 'nothing else was left')
})

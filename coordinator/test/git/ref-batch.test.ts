import t from 'tap'
import { execFileSync } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { GitStore } from '../../src/git/store.ts'
import { until } from '../../../shared/test/support/until.ts'

// Experiment refs are moved with GitStore.setRefSoon and written in batches (git/ref-batch.ts):
// these tests hold what lands against git's own for-each-ref and fsck.

async function repo(t: { teardown(fn: () => unknown): void }) {
  const dir = await mkdtemp(join(tmpdir(), 'arg-ref-batch-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const git = (args: string[]) => execFileSync('git', args, { cwd: dir, encoding: 'utf8', env: { PATH: process.env.PATH!, HOME: dir, GIT_CONFIG_NOSYSTEM: '1' } })
  git(['init', '--quiet', '--bare', '.'])
  const store = await GitStore.open(dir)
  const commit = (text: string) => store.commit({ files: { 'train.py': text }, parents: [], message: text, author: { name: 'a', email: 'a@x' } })
  const refs = () => new Map(git(['for-each-ref', '--format=%(refname) %(objectname)', 'refs/experiments/']).split('\n').filter(Boolean).map(l => l.split(' ') as [string, string]))
  return { dir, git, store, commit, refs }
}

t.test('refs moved soon all land within the window, each naming its commit, and git fsck is content', async t => {
  const { git, store, commit, refs } = await repo(t)
  t.teardown(() => store.close())
  const commits = await Promise.all(Array.from({ length: 30 }, (_, i) => commit(`v${i}\n`)))
  commits.forEach((c, i) => store.setRefSoon(`refs/experiments/e${i}`, c))
  // No deadline of its own (a busy machine may be slow; the file's timeout guards a hang).
  await until('the 30 refs', () => refs().size >= 30, { everyMs: 20 })
  const got = refs()
  t.same(commits.map((_, i) => got.get(`refs/experiments/e${i}`)), commits, 'every ref names its commit, with no flush asked for')
  t.equal(git(['fsck', '--strict', '--full', '--no-dangling']).trim(), '', 'git fsck --strict finds nothing wrong')
})

t.test('flushRefs writes what is pending at once; a later move of the same ref in the window wins', async t => {
  const { store, commit, refs } = await repo(t)
  t.teardown(() => store.close())
  const [a, b] = [await commit('a\n'), await commit('b\n')]
  store.setRefSoon('refs/experiments/x', a)
  store.setRefSoon('refs/experiments/x', b)
  store.setRefSoon('refs/experiments/y', a)
  await store.flushRefs()
  t.same(Object.fromEntries(refs()), { 'refs/experiments/x': b, 'refs/experiments/y': a })
})

t.test('close writes the refs still waiting, so an orderly stop loses none', async t => {
  const { store, commit, refs } = await repo(t)
  const a = await commit('a\n')
  for (let i = 0; i < 5; i++) store.setRefSoon(`refs/experiments/c${i}`, a)
  store.close()
  t.equal(refs().size, 5, 'all five are there once close returns')
})

t.test('a batch git refuses is retried ref by ref: one locked ref does not keep the others out', async t => {
  const { dir, store, commit, refs } = await repo(t)
  t.teardown(() => store.close())
  const a = await commit('a\n')
  // Another git process moving refs/experiments/locked holds its lock: update-ref refuses the whole transaction.
  execFileSync('mkdir', ['-p', join(dir, 'refs', 'experiments')])
  await writeFile(join(dir, 'refs', 'experiments', 'locked.lock'), '')
  const errors: string[] = []
  const log = console.error
  console.error = (...args: unknown[]) => { errors.push(args.join(' ')) }
  t.teardown(() => { console.error = log })
  for (const name of ['p', 'locked', 'q']) store.setRefSoon(`refs/experiments/${name}`, a)
  await store.flushRefs()
  t.same([...refs().keys()].sort(), ['refs/experiments/p', 'refs/experiments/q'], 'the two others land')
  t.match(errors.join('\n'), /refs\/experiments\/locked not written .*restored at the next start/, 'the locked one is named, and when it comes back')
})

t.test('a bad ref or object id is refused at once, not in the batch', async t => {
  const { store } = await repo(t)
  t.teardown(() => store.close())
  t.throws(() => store.setRefSoon('refs/experiments/a b', 'a'.repeat(40)), /bad ref update/)
  t.throws(() => store.setRefSoon('refs/experiments/a', 'HEAD'), /bad ref update/)
  t.throws(() => store.setRefSoon('HEAD', 'a'.repeat(40)), /bad ref update/)
})

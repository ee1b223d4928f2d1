import t from 'tap'
import { simpleGit } from 'simple-git'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { FALLBACK_AUTHOR, GitStore } from '../../src/git/store.ts'
import { linesDelta } from '@autoresearch-grid/shared'

async function store(t: { teardown(fn: () => unknown): void }) {
  const dir = await mkdtemp(join(tmpdir(), 'arg-store-'))
  const s = await GitStore.open(join(dir, 'git'))
  t.teardown(async () => { s.close(); await rm(dir, { recursive: true, force: true }) })
  return { s, git: simpleGit(join(dir, 'git')) }
}

const SEED = { 'train.py': 'DEPTH = 4\nLR = 0.02\nprint("train")\n' }

t.test('a commit is byte for byte what git commit-tree writes, odd author names included', async t => {
  const { s, git } = await store(t)
  const parent = await s.commit({ files: SEED, parents: [], message: 'seed', author: { name: 'seed', email: 'seed@x' }, date: 1_700_000_000_000 })
  for (const name of ['Ada Lovelace', '  Dr. Jürgen <jm>, Jr. ', '"quoted"', 'line\nbreak', 'O\'Brien;']) {
    const files = { 'train.py': `DEPTH = 5\n# ${name}\n`, 'extra.py': 'x = 1\n' }
    const message = `try ${name}\n\nval_bpb: 1.0`
    const ours = await s.commit({ files, parents: [parent], message, author: { name, email: ' <who@example.org> ' }, date: 1_700_000_123_000 })
    const when = '1700000123 +0000'
    const theirs = (await git.env({
      PATH: process.env.PATH!, GIT_AUTHOR_NAME: name, GIT_AUTHOR_EMAIL: ' <who@example.org> ', GIT_AUTHOR_DATE: when,
      GIT_COMMITTER_NAME: 'autoresearch-grid', GIT_COMMITTER_EMAIL: 'coordinator@autoresearch-grid.local', GIT_COMMITTER_DATE: when,
    }).raw(['commit-tree', `${ours}^{tree}`, '-p', parent, '-m', message])).trim()
    t.equal(ours, theirs, JSON.stringify(name))
  }
})

t.test('a name or email git would refuse as empty gets the fallback author; others are kept as git spells them', async t => {
  const { s, git } = await store(t)
  const cases: [string, string, string, string][] = [
    ['<>', 'a@example.org', FALLBACK_AUTHOR.name, 'a@example.org'],
    ['...', 'a@example.org', FALLBACK_AUTHOR.name, 'a@example.org'],
    ['  \n ', 'a@example.org', FALLBACK_AUTHOR.name, 'a@example.org'],
    ['<<>>\n<>', '<>', FALLBACK_AUTHOR.name, FALLBACK_AUTHOR.email],
    ['Ada <ada@evil> Lovelace', 'a@example.org', 'Ada ada@evil Lovelace', 'a@example.org'],
  ]
  for (const [name, email, wantName, wantEmail] of cases) {
    const c = await s.commit({ files: SEED, parents: [], message: `by ${JSON.stringify(name)}`, author: { name, email } })
    const [an, ae] = (await git.raw(['log', '-1', '--format=%an%x1f%ae', c])).trim().split('\x1f')
    t.same([an, ae], [wantName, wantEmail], JSON.stringify(name))
    t.equal((await git.raw(['fsck', '--no-dangling', '--strict'])).trim(), '', 'git fsck --strict is content')
  }
})

t.test('commits made at the same time each keep their own files', async t => {
  const { s } = await store(t)
  const parent = await s.commit({ files: SEED, parents: [], message: 'seed', author: { name: 'seed', email: 'seed@x' } })
  const edits = Array.from({ length: 40 }, (_, i) => ({ 'train.py': `DEPTH = ${i}\n` }))
  const commits = await Promise.all(edits.map((files, i) => s.commit({ files, parents: [parent], message: `edit ${i}`, author: { name: `w${i}`, email: `w${i}@x` } })))
  const read = await Promise.all(commits.map(c => s.readFiles(c, ['train.py'])))
  t.same(read, edits)
})

t.test('changes are the diff git prints against the parent, and the lines delta matches numstat', async t => {
  const { s, git } = await store(t)
  const parent = await s.commit({ files: SEED, parents: [], message: 'seed', author: { name: 'seed', email: 'seed@x' } })
  t.equal(await s.changes(parent), '', 'a root commit has no changes')
  const versions = [{ 'train.py': 'DEPTH = 6\nprint("train")\nprint("more")' }, SEED, { 'train.py': '' }]
  const commits = await Promise.all(versions.map(files => s.commit({ files, parents: [parent], message: 'edit', author: { name: 'a', email: 'a@x' } })))
  const diffs = await Promise.all(commits.map(c => s.changes(c)))
  for (const [i, c] of commits.entries()) {
    t.equal(diffs[i], await git.raw(['diff', parent, c]))
    const numstat = (await git.raw(['diff', '--numstat', parent, c])).split('\n').filter(Boolean).map(l => l.split('\t'))
    t.equal(linesDelta(SEED, versions[i]), numstat.reduce((n, [added, removed]) => n + Number(added) - Number(removed), 0))
  }
})

t.test('a three-way merge of clean changes gives the merged files; a conflict gives null', async t => {
  const { s } = await store(t)
  const base = await s.commit({ files: { 'train.py': 'A = 1\nB = 2\nC = 3\nD = 4\n' }, parents: [], message: 'base', author: { name: 'a', email: 'a@x' } })
  const edit = (text: string) => s.commit({ files: { 'train.py': text }, parents: [base], message: 'edit', author: { name: 'a', email: 'a@x' } })
  const [ours, theirs, clash] = await Promise.all([edit('A = 9\nB = 2\nC = 3\nD = 4\n'), edit('A = 1\nB = 2\nC = 3\nD = 8\n'), edit('A = 7\nB = 2\nC = 3\nD = 4\n')])
  t.same(await s.mergeFiles(ours, theirs, ['train.py']), { 'train.py': 'A = 9\nB = 2\nC = 3\nD = 8\n' })
  t.equal(await s.mergeFiles(ours, clash, ['train.py']), null)
  const merged = await s.commit({ files: { 'train.py': 'A = 9\nB = 2\nC = 3\nD = 8\n' }, parents: [ours, theirs], message: 'merge', author: { name: 'a', email: 'a@x' } })
  t.match(await s.changes(merged, ours), /^diff --git a\/train.py b\/train.py\n[\s\S]*-D = 4\n\+D = 8\n$/)
})

t.test('reading a file that is not there fails, and the next read still works', async t => {
  const { s } = await store(t)
  const c = await s.commit({ files: SEED, parents: [], message: 'seed', author: { name: 'seed', email: 'seed@x' } })
  await t.rejects(s.readFile(c, 'missing.py'), /has no missing.py/)
  t.same(await s.readFiles(c, ['train.py']), SEED)
})

t.test('refs move, and a ref to something that is not an object id is refused', async t => {
  const { s } = await store(t)
  const c = await s.commit({ files: SEED, parents: [], message: 'seed', author: { name: 'seed', email: 'seed@x' } })
  await Promise.all(Array.from({ length: 20 }, (_, i) => s.setRef(`refs/experiments/e${i}`, c)))
  t.equal(await s.resolve('refs/experiments/e19'), c)
  await t.rejects(s.setRef('refs/experiments/bad', 'not-a-commit'))
})

import t from 'tap'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { execFileSync } from 'node:child_process'
import { openWorkspace, unitBranch } from '../../src/workspace/git.ts'

const PARENT = { 'train.py': 'A = 1\nB = 2\nC = 3\n' }
const git = (dir: string, ...args: string[]) => execFileSync('git', args, { cwd: dir, encoding: 'utf8' }).trim()

t.test('opening a new directory creates a repository with a local identity', async t => {
  const dir = join(t.testdir(), 'ws')
  await openWorkspace(dir)
  t.ok(existsSync(join(dir, '.git')))
  t.equal(git(dir, 'config', '--local', 'user.name'), 'autoresearch-grid worker')
})

t.test('opening an existing workspace keeps its history', async t => {
  const dir = t.testdir()
  const sha = await (await openWorkspace(dir)).startFrom('abc123', PARENT)
  const again = await openWorkspace(dir)
  t.equal(await again.parent(), sha)
})

t.test('startFrom commits the parent files on a branch named for the unit', async t => {
  const dir = t.testdir()
  const ws = await openWorkspace(dir)
  const sha = await ws.startFrom('c0ffee1', PARENT, { unitId: 'u-42' })
  t.equal(git(dir, 'rev-parse', 'HEAD'), sha)
  t.equal(git(dir, 'symbolic-ref', '--short', 'HEAD'), 'unit/u-42')
  t.equal(readFileSync(join(dir, 'train.py'), 'utf8'), PARENT['train.py'])
})

t.test('the parent commit message names the coordinator commit', async t => {
  const dir = t.testdir()
  await (await openWorkspace(dir)).startFrom('c0ffee1', PARENT, { unitId: 'u-1' })
  t.match(git(dir, 'log', '-1', '--format=%s'), 'parent c0ffee1')
})

t.test('a new unit starts clean: files of the previous unit are gone', async t => {
  const dir = t.testdir()
  const ws = await openWorkspace(dir)
  await ws.startFrom('p1', { 'train.py': 'x\n', 'model.py': 'm\n' }, { unitId: 'a' })
  await ws.commitCandidate({ 'train.py': 'y\n' }, 'edit')
  await ws.startFrom('p2', { 'train.py': 'z\n' }, { unitId: 'b' })
  t.notOk(existsSync(join(dir, 'model.py')))
  t.same(await ws.editableFiles(), ['train.py'])
  t.equal(await ws.diff(), '')
})

t.test('restarting the same unit replaces its branch', async t => {
  const dir = t.testdir()
  const ws = await openWorkspace(dir)
  await ws.startFrom('p1', PARENT, { unitId: 'same' })
  await ws.commitCandidate({ 'train.py': 'changed\n' }, 'edit')
  const sha = await ws.startFrom('p1', PARENT, { unitId: 'same' })
  t.equal(git(dir, 'rev-list', '--count', 'HEAD'), '1')
  t.equal(await ws.parent(), sha)
})

t.test('commitCandidate returns the new commit on top of the parent', async t => {
  const dir = t.testdir()
  const ws = await openWorkspace(dir)
  const parent = await ws.startFrom('p', PARENT)
  const sha = await ws.commitCandidate({ 'train.py': 'A = 1\nB = 5\nC = 3\n' }, 'B 2 -> 5')
  t.equal(git(dir, 'rev-parse', 'HEAD~1'), parent)
  t.equal(git(dir, 'rev-parse', 'HEAD'), sha)
  t.equal(git(dir, 'log', '-1', '--format=%s'), 'B 2 -> 5')
})

t.test('an unchanged candidate still gets a commit', async t => {
  const ws = await openWorkspace(t.testdir())
  const parent = await ws.startFrom('p', PARENT)
  t.not(await ws.commitCandidate(PARENT, 'verify as is'), parent)
})

t.test('a candidate may not add files the parent did not have', async t => {
  const ws = await openWorkspace(t.testdir())
  await ws.startFrom('p', PARENT)
  await t.rejects(ws.commitCandidate({ 'evil.py': 'x' }, 'add'), /not an editable file/)
})

t.test('commitCandidate before startFrom is an error', async t => {
  const ws = await openWorkspace(t.testdir())
  await t.rejects(ws.commitCandidate(PARENT, 'x'), /before startFrom/)
})

t.test('diff is the unified diff from parent to the latest candidate', async t => {
  const ws = await openWorkspace(t.testdir())
  await ws.startFrom('p', PARENT)
  await ws.commitCandidate({ 'train.py': 'A = 1\nB = 5\nC = 3\n' }, 'first try')
  await ws.commitCandidate({ 'train.py': 'A = 1\nB = 6\nC = 3\n' }, 'retry after crash')
  const diff = await ws.diff()
  t.match(diff, /^diff --git a\/train\.py b\/train\.py/)
  t.match(diff, /\n-B = 2\n\+B = 6\n/)
  t.notMatch(diff, /B = 5/)
})

t.test('diff ignores files outside the editable set, such as prepare.py or caches', async t => {
  const dir = t.testdir()
  const ws = await openWorkspace(dir)
  await ws.startFrom('p', PARENT)
  execFileSync('sh', ['-c', 'echo junk > prepare.py'], { cwd: dir })
  await ws.commitCandidate({ 'train.py': 'A = 1\n' }, 'shorter')
  t.notMatch(await ws.diff(), /prepare\.py/)
})

t.test('a workspace inside another repository gets its own repository', async t => {
  const outer = t.testdir({ inner: {} })
  git(outer, 'init', '-q')
  const ws = await openWorkspace(join(outer, 'inner'))
  await ws.startFrom('p', PARENT)
  t.ok(existsSync(join(outer, 'inner', '.git')))
  t.throws(() => execFileSync('git', ['rev-parse', 'HEAD'], { cwd: outer, stdio: 'pipe' }))
})

t.test('unit ids become safe branch names', async t => {
  t.equal(unitBranch('u 1/../x'), 'unit/u-1-x')
  t.equal(unitBranch('...'), 'unit/unnamed')
})

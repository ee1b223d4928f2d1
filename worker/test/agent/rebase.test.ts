import t, { type Test } from 'tap'
import { readFileSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { execa } from 'execa'
import type { WorkUnit } from '@autoresearch-grid/shared'
import { HeuristicAgent } from '../../src/agent/heuristic-agent.ts'
import { openWorkspace } from '../../src/workspace/git.ts'
import { mergeText } from '../../src/workspace/merge.ts'

// A rebase unit (DESIGN §7): a promising candidate C was made on parent P, the best moved on, and
// the coordinator's three-way merge of C onto the best conflicted. The heuristic researcher must
// re-apply C's diff deterministically (git apply --3way in its workspace), not invent a new idea.
const P = readFileSync(fileURLToPath(new URL('../../../trainer/train.py', import.meta.url)), 'utf8')
const edit = (src: string, from: string, to: string) => {
  if (!src.includes(from)) throw new Error(`train.py has no "${from}"`)
  return src.replace(from, to)
}
const COMMENT = '# Optimization. Learning rates of the AdamW groups are scaled by (model_dim / 768) ** -0.5.'
// The best changed MATRIX_LR and, far away, WARMDOWN_FRAC; C changed MATRIX_LR differently and the
// comment above it (a change no constant-rewriting could re-apply).
const BEST = edit(edit(P, 'MATRIX_LR = 0.04', 'MATRIX_LR = 0.05'), 'WARMDOWN_FRAC = 0.5', 'WARMDOWN_FRAC = 0.6')
const C = edit(edit(P, 'MATRIX_LR = 0.04', 'MATRIX_LR = 0.06'), COMMENT, '# Optimization: Muon for matrices, AdamW for the rest (rates scaled by width).')

/** C's diff as the coordinator's git store writes it: `diff --git` with the blob ids of P and C. */
async function diffOf(before: string, after: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'arg-rebase-diff-'))
  try {
    const git = (...args: string[]) => execa('git', ['-c', 'user.name=t', '-c', 'user.email=t@t', ...args], { cwd: dir })
    await git('init', '-q')
    await writeFile(join(dir, 'train.py'), before)
    await git('add', 'train.py')
    await git('commit', '-qm', 'P')
    await writeFile(join(dir, 'train.py'), after)
    return (await git('diff', '--no-color', 'HEAD', '--', 'train.py')).stdout + '\n'
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

const unit = (over: Partial<WorkUnit>): WorkUnit => ({
  id: 'u-rebase', kind: 'rebase', campaign: 'demo', profile: 'cpu-tiny', budgetSeconds: 3, leaseToken: 'l', leaseExpiresAt: 0, parentCommit: 'best',
  source: { 'train.py': BEST }, editableFiles: ['train.py'], hypothesis: { id: 'e1', title: 're-apply: MATRIX_LR 0.04 -> 0.06', body: '' },
  referenceDiff: null, triedOnParent: [], ...over,
})

/** A worker workspace holding the best, as prepareExperiment leaves it before the agent runs. */
async function workspaceWithBest(t: Test) {
  const dir = await mkdtemp(join(tmpdir(), 'arg-rebase-ws-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const ws = await openWorkspace(dir)
  await ws.startFrom('best', { 'train.py': BEST }, { unitId: 'u-rebase' })
  return dir
}

const propose = (u: WorkUnit, dir: string) => new HeuristicAgent().begin({ unit: u, files: { ...u.source }, program: '', seed: 7, dir }).propose()

t.test('a conflict the three-way merge could not solve still gets the reference diff re-applied', async t => {
  t.equal(await mergeText(P, BEST, C), null, 'the coordinator-side merge of C onto the best conflicts')
  const dir = await workspaceWithBest(t)
  const head = (await execa('git', ['rev-parse', 'HEAD'], { cwd: dir })).stdout
  const u = unit({ referenceDiff: await diffOf(P, C), referenceBase: { 'train.py': P } })
  const p = await propose(u, dir)
  const want = edit(edit(BEST, 'MATRIX_LR = 0.05', 'MATRIX_LR = 0.06'), COMMENT, '# Optimization: Muon for matrices, AdamW for the rest (rates scaled by width).')
  t.equal(p.files['train.py'], want, "C's lines where both changed, the best's change elsewhere (WARMDOWN_FRAC 0.6) kept")
  t.match(p.description, /^re-applied \(three-way, conflicts resolved for the reference\): MATRIX_LR 0\.04 -> 0\.06/)
  t.same(await propose(u, dir), p, 'deterministic: the same unit gives the same proposal')
  t.equal((await execa('git', ['status', '--porcelain'], { cwd: dir })).stdout, '', 'the workspace is left as it was: no edits, nothing staged')
  t.equal((await execa('git', ['rev-parse', 'HEAD'], { cwd: dir })).stdout, head, '... and no commit')
})

t.test('a diff whose lines moved but did not change applies without its base', async t => {
  const CACHES = '# Compile caches live in the shared cache folder so a repeated experiment starts warm.'
  const far = edit(P, CACHES, '# Compile caches are shared between runs.')
  const moved = `# a line the best added at the top\n${BEST}`
  const dir = await workspaceWithBest(t)
  const p = await propose(unit({ source: { 'train.py': moved }, referenceDiff: await diffOf(P, far) }), dir)
  t.equal(p.files['train.py'], edit(moved, CACHES, '# Compile caches are shared between runs.'))
  t.match(p.description, /^re-applied \(clean\)/)
})

t.test('without the base, a conflicting diff falls back to its constants, then to the catalogue', async t => {
  const dir = await workspaceWithBest(t)
  const p = await propose(unit({ referenceDiff: await diffOf(P, C) }), dir)
  t.equal(p.files['train.py'], edit(BEST, 'MATRIX_LR = 0.05', 'MATRIX_LR = 0.06'), 'the constant is re-applied; the comment change is lost without a base')
  t.equal(p.description, 're-applied: MATRIX_LR 0.05 -> 0.06')

  const commentOnly = await diffOf(P, edit(P, COMMENT, '# changed'))
  const gone = edit(BEST, COMMENT, '# the best rewrote this comment')
  const q = await propose(unit({ source: { 'train.py': gone }, referenceDiff: commentOnly }), dir)
  t.not(q.files['train.py'], gone, 'the catalogue still proposes a change')
  t.notMatch(q.description, /^re-applied/)
})

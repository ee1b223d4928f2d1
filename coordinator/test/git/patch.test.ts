import t from 'tap'
import { execFileSync } from 'node:child_process'
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PATCH_EDIT_LIMIT, patchOf } from '../../src/git/patch.ts'

// A report's patch is computed in the coordinator (git/patch.ts). What it must be is right: `git
// apply` of it onto the parent's files gives the candidate's, byte for byte. These tests hold it
// to that over many edits of the real seed trainer, of the kinds agents make and of odd ones.

const SEED = readFileSync(join(import.meta.dirname, '../../../trainer/train.py'), 'utf8')

/** A small seeded generator, so a failing edit can be made again. */
function random(seed: number) {
  let s = seed >>> 0
  return () => {
    s = (s + 0x6d2b79f5) >>> 0
    let x = Math.imul(s ^ (s >>> 15), 1 | s)
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
    return ((x ^ (x >>> 14)) >>> 0) / 2 ** 32
  }
}

/** One edit of `text`: a few of the operations an agent (or a hostile one) makes. */
function edit(text: string, rnd: () => number): string {
  const lines = text.split('\n')
  const at = () => Math.floor(rnd() * (lines.length + 1))
  const ops = 1 + Math.floor(rnd() * 4)
  for (let k = 0; k < ops; k++) {
    const i = at()
    switch (Math.floor(rnd() * 9)) {
      case 0: lines.splice(i, 1 + Math.floor(rnd() * 6)); break // delete a run
      case 1: lines.splice(i, 0, `NEW_CONSTANT_${k} = ${rnd().toFixed(4)}  # added`); break
      case 2: if (lines[i] !== undefined) lines[i] = lines[i].replace(/\d+(\.\d+)?/, m => String(Number(m) * 2)) || `${lines[i]} # touched`; break
      case 3: lines.splice(i, 0, ...lines.slice(at(), at() + 4)); break // a repeated block (ambiguous matches)
      case 4: lines.splice(i, 0, '', '', '    pass', ''); break // blank lines and indentation
      case 5: if (lines[i] !== undefined) lines[i] = `${lines[i]}\r`; break // a CR at a line's end
      case 6: if (lines[i] !== undefined) lines[i] = `${lines[i]}  `; break // trailing spaces
      case 7: lines.splice(i, 0, 'é, ünïcode, 日本語, 🙂'); break
      case 8: lines.splice(0, 1 + Math.floor(rnd() * 3)); break // the very first lines
    }
  }
  let out = lines.join('\n')
  const end = rnd()
  if (end < 0.1) out = out.replace(/\n+$/, '') // no newline at the end
  else if (end < 0.15) out += '\n\n'
  return out
}

/** Applies `patch` with git onto `before` in a fresh folder and reads every file back. */
function applied(dir: string, before: Record<string, string>, patch: string): Record<string, string> {
  for (const f of readdirSync(dir)) if (f !== '.patch') execFileSync('rm', ['-rf', join(dir, f)])
  for (const [name, text] of Object.entries(before)) writeFileSync(join(dir, name), text)
  writeFileSync(join(dir, '.patch'), patch)
  execFileSync('git', ['apply', '--whitespace=nowarn', '.patch'], { cwd: dir, env: { PATH: process.env.PATH!, HOME: dir, GIT_CONFIG_NOSYSTEM: '1' } })
  return Object.fromEntries(readdirSync(dir).filter(f => f !== '.patch').map(f => [f, readFileSync(join(dir, f), 'utf8')]))
}

t.test('git apply of the patch onto the parent gives the candidate, over 300 edits of the seed trainer', async t => {
  const dir = await mkdtemp(join(tmpdir(), 'arg-patch-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  mkdirSync(dir, { recursive: true })
  const rnd = random(20261204)
  let wrong = 0
  let computed = 0
  for (let n = 0; n < 300; n++) {
    const parent = n % 3 === 0 ? edit(SEED, rnd) : SEED // some parents are themselves edits
    const before = { 'train.py': parent }
    const after = { 'train.py': edit(parent, rnd) }
    if (after['train.py'] === parent) continue
    const patch = patchOf(before, after)
    if (patch === null) continue
    computed++
    const got = applied(dir, before, patch)
    if (got['train.py'] !== after['train.py']) wrong++
  }
  t.equal(wrong, 0, 'every patch applies to its parent and gives the candidate exactly')
  t.ok(computed >= 280, `nearly every agent-sized edit is computed here (${computed} of 300)`)
})

t.test('the layout git uses: headers, hunks of three lines of context, no newline at the end, files made and removed', async t => {
  const before = { 'train.py': 'a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n', 'old.py': 'x = 1\n' }
  const after = { 'train.py': 'a\nb\nc\nd\nE\nf\ng\nh\ni\nj', 'new.py': 'y = 2\n' }
  const patch = patchOf(before, after)!
  t.match(patch, /^diff --git a\/new\.py b\/new\.py\nnew file mode 100644\n--- \/dev\/null\n\+\+\+ b\/new\.py\n@@ -0,0 \+1,1 @@\n\+y = 2\n/, 'a new file')
  t.match(patch, /diff --git a\/old\.py b\/old\.py\ndeleted file mode 100644\n--- a\/old\.py\n\+\+\+ \/dev\/null\n@@ -1,1 \+0,0 @@\n-x = 1\n/, 'a removed file')
  t.match(patch, /diff --git a\/train\.py b\/train\.py\n--- a\/train\.py\n\+\+\+ b\/train\.py\n@@ -2,9 \+2,9 @@\n b\n c\n d\n-e\n\+E\n f\n g\n h\n i\n-j\n\+j\n\\ No newline at end of file\n/, 'hunks as git lays them out')
  const dir = await mkdtemp(join(tmpdir(), 'arg-patch-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  t.same(applied(dir, before, patch), after, 'and git applies it')
  t.equal(patchOf(before, before), '', 'no change, no patch')
})

t.test('what goes to git instead: a binary file, an edit too long for the event loop', async t => {
  t.equal(patchOf({ 'train.py': 'x = 1\n' }, { 'train.py': 'x = 1\n\0' }), null, 'a NUL byte: git decides how to show it')
  const long = Array.from({ length: 3000 }, (_, i) => `line_${i} = ${i}`).join('\n')
  const shuffled = long.split('\n').map((l, i) => (i % 2 ? l.toUpperCase() : l)).join('\n')
  t.equal(patchOf({ 'train.py': long }, { 'train.py': shuffled }), null, `more than ${PATCH_EDIT_LIMIT} edits`)
  // A source a worker may send (256 KB) of two-byte lines, a few changes spread through it: the
  // matcher's work would be its 85,000 lines times the edits.
  const short = Array.from({ length: 85_000 }, (_, i) => String.fromCharCode(97 + (i % 26))).join('\n')
  const few = short.split('\n').map((l, i) => (i % 20_000 === 7 ? `X${l}` : l)).join('\n')
  t.equal(patchOf({ 'train.py': short }, { 'train.py': few }), null, 'a file of more than 10,000 lines')
  const mid = Array.from({ length: 9_000 }, (_, i) => `${String.fromCharCode(97 + (i % 26))}`).join('\n')
  const spread = mid.split('\n').map((l, i) => (i % 300 === 7 ? `X${l}` : l)).join('\n')
  t.equal(patchOf({ 'train.py': mid }, { 'train.py': spread }), null, '30 changes spread over 9,000 lines: more matching than the budget')
  t.type(patchOf({ 'train.py': mid }, { 'train.py': mid.replace(/^a$/m, 'A') }), 'string', 'one change in 9,000 lines is made here')
})

t.test("hunk line numbers are git's own where the change is unambiguous (git apply alone would forgive an offset)", async t => {
  const dir = await mkdtemp(join(tmpdir(), 'arg-patch-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const lines = SEED.split('\n')
  const headers = (patch: string) => patch.split('\n').filter(l => l.startsWith('@@')).map(l => /^@@ -\d+(,\d+)? \+\d+(,\d+)? @@/.exec(l)![0]
    .replace(/-(\d+) /, '-$1,1 ').replace(/\+(\d+) @@/, '+$1,1 @@'))
  // A line that occurs once in the file (a blank line changed next to another blank one is a
  // change either of them could be said to have had).
  const unique = (i: number) => {
    while (lines.indexOf(lines[i]) !== lines.lastIndexOf(lines[i])) i++
    return i
  }
  for (const at of [0, 1, 2, 5, 200, 400, lines.length - 4, lines.length - 2].map(unique)) {
    const edited = [...lines]
    edited[at] = `${edited[at]} # changed at ${at}`
    edited.splice(Math.min(at + 40, edited.length - 1), 0, `INSERTED_${at} = 1`)
    const after = edited.join('\n')
    writeFileSync(join(dir, 'a.py'), SEED)
    writeFileSync(join(dir, 'b.py'), after)
    let git = ''
    try {
      execFileSync('git', ['diff', '--no-index', '--no-color', 'a.py', 'b.py'], { cwd: dir, encoding: 'utf8', env: { PATH: process.env.PATH!, HOME: dir, GIT_CONFIG_NOSYSTEM: '1' } })
    } catch (err) {
      git = (err as { stdout: string }).stdout // exit 1: the files differ
    }
    t.same(headers(patchOf({ 'train.py': SEED }, { 'train.py': after })!), headers(git), `a change at line ${at + 1}`)
  }
})

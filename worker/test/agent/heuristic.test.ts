import t from 'tap'
import { existsSync, readFileSync } from 'node:fs'
import { execFileSync } from 'node:child_process'
import { listMutations, parseConstants, proposeHeuristic, type HeuristicProposal } from '../../src/agent/heuristic.ts'

// A train.py head in the style of trainer/train.py; the tests do not depend on the real file's
// current values, except the one that runs the whole catalogue over it.
const SOURCE = `"""
A docstring mentioning DEPTH = 99 that is not code.
"""

import os

DEPTH = 8  # transformer blocks
ASPECT_RATIO = 64  # model_dim = DEPTH * ASPECT_RATIO
HEAD_DIM = 128  # channels per head
WINDOW_PATTERN = "SSSL"  # S = sliding window, L = full context
LOGIT_SOFTCAP = 15.0  # logits squashed into (-cap, cap)
TOTAL_BATCH_TOKENS = 2**19  # tokens per optimizer step
DEVICE_BATCH = 128  # rows per pass

TINY_DEPTH = 2
TINY_MODEL_DIM = 128
TINY_HEAD_DIM = 64
TINY_TOTAL_BATCH_TOKENS = 2**9
TINY_DEVICE_BATCH = 4

MATRIX_LR = 0.04  # Muon
EMBEDDING_LR = 0.6  # AdamW
WEIGHT_DECAY = 0.0
WARMUP_FRAC = 0.0
WARMDOWN_FRAC = 0.5

UNTIMED_STEPS = 5 if os.environ.get("X") else 1


def main():
    LOCAL = 3
    return DEPTH * LOCAL
`

const base = { source: SOURCE, tried: [] as string[], seed: 1 }
const changedLines = (a: string, b: string) => {
  const x = a.split('\n'), y = b.split('\n')
  if (x.length !== y.length) throw new Error(`line count changed from ${x.length} to ${y.length}`)
  return x.map((line, i) => (line === y[i] ? null : { before: line, after: y[i] })).filter(d => d !== null)
}
const pythonFor = () => (existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3')

t.test('parseConstants reads int, float, power-of-two and string constants', async t => {
  const c = parseConstants(SOURCE)
  t.match(c.get('DEPTH'), { value: 8, kind: 'int', literal: '8', tail: '  # transformer blocks' })
  t.match(c.get('LOGIT_SOFTCAP'), { value: 15, kind: 'float' })
  t.match(c.get('TOTAL_BATCH_TOKENS'), { value: 2 ** 19, kind: 'pow2', literal: '2**19' })
  t.match(c.get('WINDOW_PATTERN'), { value: 'SSSL', kind: 'string', quote: '"' })
})

t.test('parseConstants skips expressions, indented names and docstrings', async t => {
  const c = parseConstants(SOURCE)
  t.notOk(c.has('UNTIMED_STEPS'))
  t.notOk(c.has('LOCAL'))
  t.equal(c.get('DEPTH')?.value, 8, 'the docstring DEPTH = 99 is not read')
})

t.test('a constant assigned twice is left alone', async t => {
  t.notOk(parseConstants('DEPTH = 8\nDEPTH = 4\n').has('DEPTH'))
  t.notOk(listMutations('DEPTH = 8\nDEPTH = 4\n').some(m => m.name.startsWith('depth')))
})

t.test('every mutation changes exactly the one line of its constant and keeps its comment', async t => {
  const all = listMutations(SOURCE)
  t.ok(all.length > 20, `${all.length} mutations`)
  for (const m of all) {
    const diff = changedLines(SOURCE, m.source)
    t.equal(diff.length, 1, m.name)
    const constant = m.description.split(' ')[0]
    t.ok(diff[0].before.startsWith(`${constant} = `) && diff[0].after.startsWith(`${constant} = `), m.name)
    t.equal(diff[0].after.split('#')[1], diff[0].before.split('#')[1], `${m.name} keeps the comment`)
  }
})

t.test('descriptions read NAME old -> new (purpose) on one line', async t => {
  for (const m of listMutations(SOURCE)) {
    t.match(m.description, /^[A-Z][A-Z0-9_]* \S+ -> \S+ \([^)]+\)$/, m.name)
  }
  t.ok(listMutations(SOURCE).some(m => m.description === 'MATRIX_LR 0.04 -> 0.06 (raise the Muon learning rate)'))
})

t.test('the sliding window is only moved when some layer slides', async t => {
  const withWindow = (pattern: string) => `WINDOW_PATTERN = "${pattern}"\nSHORT_WINDOW = 0.5\n`
  const names = (pattern: string) => listMutations(withWindow(pattern)).map(m => m.name)
  t.ok(names('SSSL').includes('short-window-down'))
  t.notOk(names('L').some(n => n.startsWith('short-window')), 'every layer full: the window would change nothing')
  t.ok(names('L').includes('window-pattern-more-sliding'), 'sliding layers can still be brought in')
  t.notOk(proposeHeuristic({ source: withWindow('L'), tried: [], seed: 1, hypothesis: { title: 'A shorter sliding window', body: '' } })?.description.startsWith('SHORT_WINDOW'))
})

t.test('mutation names are unique', async t => {
  const names = listMutations(SOURCE).map(m => m.name)
  t.equal(new Set(names).size, names.length)
})

t.test('values keep the style they were written in', async t => {
  const byName = new Map(listMutations(SOURCE).map(m => [m.name, m.description]))
  t.equal(byName.get('total-batch-tokens-up'), 'TOTAL_BATCH_TOKENS 2**19 -> 2**20 (double the tokens per optimizer step)')
  t.match(byName.get('logit-softcap-up'), /15\.0 -> 20\.0 /)
  t.match(byName.get('depth-down'), /DEPTH 8 -> 7 /)
  t.match(byName.get('window-pattern-more-full'), /"SSSL" -> "SSL"/)
})

t.test('the same seed gives the same proposal', async t => {
  t.same(proposeHeuristic({ ...base, seed: 7 }), proposeHeuristic({ ...base, seed: 7 }))
})

t.test('different seeds spread over the catalogue', async t => {
  const names = new Set(Array.from({ length: 50 }, (_, seed) => proposeHeuristic({ ...base, seed })!.name))
  t.ok(names.size >= 15, `${names.size} different mutations from 50 seeds`)
})

t.test('a mutation tried by name is not proposed again', async t => {
  const first = proposeHeuristic(base)!
  const second = proposeHeuristic({ ...base, tried: [first.name] })!
  t.not(second.name, first.name)
})

t.test('a mutation tried by description is not proposed again', async t => {
  const first = proposeHeuristic(base)!
  t.not(proposeHeuristic({ ...base, tried: [first.description] })!.name, first.name)
})

t.test('a free-text description containing the same change counts as tried', async t => {
  const pool = (tried: string[]) => new Set(Array.from({ length: 200 }, (_, seed) => proposeHeuristic({ ...base, tried, seed })!.name))
  t.ok(pool([]).has('matrix-lr-up'))
  t.notOk(pool(['Agent: MATRIX_LR 0.04 -> 0.06 to speed up early training']).has('matrix-lr-up'))
})

t.test('a similar change to a different constant does not count as tried', async t => {
  const pool = new Set(Array.from({ length: 200 }, (_, seed) => proposeHeuristic({ ...base, tried: ['TINY_DEPTH 8 -> 9'], seed })!.name))
  t.ok(pool.has('depth-up'))
})

t.test('proposing until null enumerates every mutation exactly once', async t => {
  const tried: string[] = []
  for (let p = proposeHeuristic({ ...base, tried }); p; p = proposeHeuristic({ ...base, tried })) {
    t.notOk(tried.includes(p.name), `${p.name} not repeated`)
    tried.push(p.name)
    if (tried.length > 200) break
  }
  t.same([...tried].sort(), listMutations(SOURCE).map(m => m.name).sort())
})

t.test('returns null when everything was tried', async t => {
  const tried = listMutations(SOURCE).map(m => m.description)
  t.equal(proposeHeuristic({ ...base, tried }), null)
})

t.test('returns null for a source without known constants', async t => {
  t.equal(proposeHeuristic({ ...base, source: 'print("hello")\n' }), null)
})

t.test('mutations stay within bounds', async t => {
  const names = listMutations('DEPTH = 32\nMATRIX_LR = 0.25\nWARMDOWN_FRAC = 0.9\n').map(m => m.name)
  t.notOk(names.includes('depth-up'), 'DEPTH stops at 32')
  t.notOk(names.includes('matrix-lr-up'), 'MATRIX_LR stops at 0.3')
  t.notOk(names.includes('warmdown-frac-up'))
  t.ok(names.includes('depth-down') && names.includes('matrix-lr-down'))
})

t.test('batch changes that would break whole-row gradient accumulation are not proposed', async t => {
  const names = listMutations(SOURCE).map(m => m.name)
  t.notOk(names.includes('tiny-total-batch-tokens-down'), '2**8 tokens is not a multiple of 4 rows of 128')
  t.notOk(names.includes('tiny-device-batch-up'), '8 rows of 128 do not divide 2**9')
  t.ok(names.includes('tiny-total-batch-tokens-up'))
})

t.test('warm-up and warm-down together never exceed the budget', async t => {
  const names = listMutations('WARMUP_FRAC = 0.2\nWARMDOWN_FRAC = 0.8\n').map(m => m.name)
  t.notOk(names.includes('warmup-frac-up'))
  t.notOk(names.includes('warmdown-frac-up'))
})

t.test('the cpu-tiny profile only touches constants that profile reads', async t => {
  const names = listMutations(SOURCE, { profile: 'cpu-tiny' }).map(m => m.name)
  t.ok(names.includes('tiny-depth-up'))
  t.notOk(names.some(n => /^(depth|aspect-ratio|head-dim|total-batch|device-batch)-/.test(n)))
})

t.test('the gpu profile never touches the tiny constants', async t => {
  t.notOk(listMutations(SOURCE, { profile: 'gpu' }).some(m => m.name.startsWith('tiny-')))
})

t.test('a hypothesis naming a constant in words gets a matching mutation', async t => {
  for (let seed = 0; seed < 10; seed++) {
    const p = proposeHeuristic({ ...base, seed, hypothesis: { title: 'Raise the matrix learning rate', body: '' } })!
    t.equal(p.name, 'matrix-lr-up')
  }
})

t.test('a hypothesis asking for lower gets the down mutation', async t => {
  const p = proposeHeuristic({ ...base, hypothesis: { title: 'Muon LR too high?', body: 'I think we should lower the MATRIX_LR.' } })!
  t.equal(p.name, 'matrix-lr-down')
})

t.test('a hypothesis naming a value gets exactly that value', async t => {
  const p = proposeHeuristic({ ...base, hypothesis: { title: 'try DEPTH 6', body: '' }, profile: 'gpu' })!
  t.equal(p.description, 'DEPTH 8 -> 6 (as the hypothesis suggests)')
  t.equal(p.name, 'depth-set-6')
  t.match(p.source, /^DEPTH = 6 {2}# transformer blocks$/m)
})

t.test('a named value outside the bounds falls back to the constant\'s own steps', async t => {
  const p = proposeHeuristic({ ...base, hypothesis: { title: 'try DEPTH 100', body: '' }, profile: 'gpu' })!
  t.match(p.name, /^depth-(up|down)$/)
})

t.test('once the hypothesis\'s mutation was tried, another one on the same constant comes next', async t => {
  const p = proposeHeuristic({ ...base, tried: ['depth-set-6'], hypothesis: { title: 'try DEPTH 6', body: '' }, profile: 'gpu' })!
  t.match(p.name, /^depth-/)
})

t.test('a hypothesis about something the catalogue cannot change leaves the seeded choice', async t => {
  const hypothesis = { title: 'Use rotary embeddings with a larger base', body: 'theta 100000' }
  t.same(proposeHeuristic({ ...base, seed: 3, hypothesis }), proposeHeuristic({ ...base, seed: 3 }))
})

t.test('a string-valued hypothesis sets the window pattern', async t => {
  const p = proposeHeuristic({ ...base, hypothesis: { title: 'Try WINDOW_PATTERN "SL"', body: '' } })!
  t.equal(p.description, 'WINDOW_PATTERN "SSSL" -> "SL" (as the hypothesis suggests)')
})

t.test('a window pattern the trainer cannot read is never set', async t => {
  const p = proposeHeuristic({ ...base, hypothesis: { title: 'Try WINDOW_PATTERN 12', body: '' } })!
  t.notMatch(p.source, /WINDOW_PATTERN = "12"/)
})

const REAL = new URL('../../../trainer/train.py', import.meta.url)

t.test('every mutation of the real train.py still parses as Python', { skip: existsSync(REAL) ? false : 'trainer/train.py not there yet' }, async t => {
  const source = readFileSync(REAL, 'utf8')
  const proposals: HeuristicProposal[] = listMutations(source)
  t.ok(proposals.length > 20, `${proposals.length} mutations of train.py`)
  for (const p of proposals) t.equal(changedLines(source, p.source).length, 1, p.name)
  const check = 'import ast, json, sys\nfor s in json.load(sys.stdin): ast.parse(s)\nprint("ok")'
  t.equal(execFileSync(pythonFor(), ['-c', check], { input: JSON.stringify(proposals.map(p => p.source)), encoding: 'utf8' }).trim(), 'ok')
})

t.test('a proposal piped through ast.parse is valid Python', async t => {
  const p = proposeHeuristic({ ...base, seed: 11 })!
  t.doesNotThrow(() => execFileSync(pythonFor(), ['-c', 'import ast,sys; ast.parse(sys.stdin.read())'], { input: p.source }))
})

import t from 'tap'
import { SwarmView } from '@autoresearch-grid/shared'
import { buildSwarmView, cutToSize, type ExperimentRow, type ViewInput } from '../../src/swarm/view.ts'

// The swarm view's pure core: what an agent is shown about its parent, in what order, within what size.
const P = 'p'.repeat(40)
const Q = 'q'.repeat(40)

function row(i: number, over: Partial<ExperimentRow> = {}): ExperimentRow {
  return { id: `e${i}`, unitId: `u${i}`, parentCommit: P, description: `edit ${i}`, status: 'discarded', decision: 'discarded: within noise', valBpb: 1.5 + i / 1000,
    agentNotes: 'why I tried it', changes: [`MATRIX_LR 0.02 -> 0.0${i % 10}`], sourceHash: String(i).padStart(64, '0'), hardwareClass: 'cpu-x86_64', ...over }
}

function input(over: Partial<ViewInput> = {}): ViewInput {
  return {
    parent: P, best: { commit: P, valBpb: 1.5 }, lineage: [], onParent: [], recent: [], inFlight: [],
    parentMean: (commit, cls) => (commit === P && cls === 'cpu-x86_64' ? 1.5 : null), agentOf: unit => (unit === 'u1' ? 'heuristic' : null), open: [], exhausted: [], ...over,
  }
}

t.test('in-flight candidates on the parent come first, then what was measured there, then the rest of the campaign', async t => {
  const v = buildSwarmView(input({
    onParent: [row(1), row(2)],
    recent: [row(3, { parentCommit: Q }), row(1)],
    inFlight: [{ unitId: 'u9', parentCommit: P, description: 'being tried', changes: ['DEPTH 4 -> 5'], sourceHash: 'f'.repeat(64), agent: 'claude:x' },
      { unitId: 'u8', parentCommit: Q, description: 'elsewhere, in flight', changes: [], sourceHash: 'e'.repeat(64), agent: null }],
  }))
  t.same(v.nearby.map(e => [e.id, e.onParent, e.status]), [['u9', true, 'in-flight'], ['e1', true, 'discarded'], ['e2', true, 'discarded'], ['e3', false, 'discarded']],
    'each experiment once; claims on other parents are left out')
  t.equal(v.nearby[1].delta, 0.001, 'Δ against the parent\'s mean on the same class')
  t.equal(v.nearby[3].delta, null, 'no mean for that parent: Δ unknown')
  t.equal(v.nearby[1].agent, 'heuristic')
  t.same(v.nearby[1].changes, ['MATRIX_LR 0.02 -> 0.01'])
  t.equal(v.best.commit, P.slice(0, 10))
  t.ok(SwarmView.safeParse(v).success, 'it is what the protocol allows')
})

t.test('the view stays within its size bound, dropping the rest of the campaign before what is on the parent, and says how much it left out', async t => {
  const long = 'n'.repeat(2000)
  const v = buildSwarmView(input({
    onParent: Array.from({ length: 30 }, (_, i) => row(i, { agentNotes: long })),
    recent: Array.from({ length: 30 }, (_, i) => row(100 + i, { parentCommit: Q, agentNotes: long })),
    open: Array.from({ length: 12 }, (_, i) => ({ title: `idea ${i}`, priority: i })),
    exhausted: Array.from({ length: 20 }, (_, i) => ({ title: `old idea ${i}`, status: 'rejected' })),
    maxChars: 10_000,
  }))
  t.ok(JSON.stringify(v).length <= 10_000, `${JSON.stringify(v).length} characters`)
  t.ok(v.omitted > 0, `${v.omitted} entries left out`)
  t.notOk(v.nearby.some(e => !e.onParent), 'the rest of the campaign went first')
  t.ok(v.nearby.length >= 10, 'what was tried on the parent stays, newest first')
  t.equal(v.nearby[0].id, 'e0')
  t.ok(v.nearby.every(e => e.notes.length <= 400), 'notes are shortened')
  t.ok(SwarmView.safeParse(v).success)
})

t.test('the view is cut exactly where writing it out whole after every cut would cut it', async t => {
  // The reference: the same cut, measuring the whole view's JSON after every cut.
  const reference = (whole: SwarmView, maxChars: number): SwarmView => {
    const view: SwarmView = structuredClone({ ...whole, omitted: 0 })
    return cutToSize(view, maxChars, whole.omitted, () => JSON.stringify(view).length)
  }
  // Text JSON escapes (quotes, newlines, backslashes, non-ASCII) and lists of every length.
  const odd = (i: number) => `${'"\\\n'.repeat(i % 4)}é—${'x'.repeat((i * 37) % 300)}`
  const base = input({
    lineage: Array.from({ length: 10 }, (_, i) => ({ commit: String(i).repeat(40), description: odd(i), valBpb: 1.5 - i / 100, delta: -0.01 })),
    onParent: Array.from({ length: 30 }, (_, i) => row(i, { agentNotes: odd(i), description: odd(i + 1) })),
    recent: Array.from({ length: 30 }, (_, i) => row(100 + i, { parentCommit: Q, agentNotes: odd(i + 2) })),
    inFlight: [{ unitId: 'u9', parentCommit: P, description: odd(3), changes: ['DEPTH 4 -> 5'], sourceHash: 'f'.repeat(64), agent: 'claude:x' }],
    open: Array.from({ length: 12 }, (_, i) => ({ title: odd(i), priority: i })),
    exhausted: Array.from({ length: 20 }, (_, i) => ({ title: odd(i + 3), status: 'rejected' })),
  })
  const whole = buildSwarmView({ ...base, maxChars: Number.POSITIVE_INFINITY })
  const full = JSON.stringify(whole).length
  for (const maxChars of [0, 50, 500, 1000, 2500, 5000, 7500, 10_000, 15_000, full - 1, full, full + 1]) {
    t.same(buildSwarmView({ ...base, maxChars }), reference(whole, maxChars), `at ${maxChars} characters`)
  }
})

import t from 'tap'
import { decide, type CandidateSample, type ClassRuns, type ParentRun, type RatchetInput } from '../../src/ratchet/decide.ts'
import { DEFAULT_RATCHET_SETTINGS, type RatchetSettings } from '../../src/ratchet/settings.ts'
import { carriedFrom } from '../../src/ratchet/decide-sequential.ts'
import { DEFAULT_SEQUENTIAL } from '../../src/ratchet/sequential.ts'

// The `pooled` policy (docs/RATCHET.md, issue 17): the candidate's class H has σ 0.01 and a parent
// at 1.000 measured 8 times; class K runs at another level (2.000) with another σ (0.02). A run on
// K is evidence only against K's own parent, in K's σ.
const POOLED: RatchetSettings = { ...DEFAULT_RATCHET_SETTINGS, policy: 'pooled' }
const SEQUENTIAL: RatchetSettings = { ...DEFAULT_RATCHET_SETTINGS, policy: 'sequential' }
const run = (valBpb: number, contributorId: string): CandidateSample => ({ valBpb, workerId: `w-${contributorId}`, contributorId, trainingSeconds: 300 })
const parent = (level: number, by: string[]): ParentRun[] => by.map(contributorId => ({ valBpb: level, contributorId }))
const onK = (samples: CandidateSample[], level = 2.0): ClassRuns => ({ hardwareClass: 'k', samples, parentRuns: parent(level, ['p', 'q', 'p', 'q', 'p', 'q', 'p', 'q']), sigma: 0.02 })

function input(samples: CandidateSample[], elsewhere: ClassRuns[], settings = POOLED): RatchetInput {
  const parentRuns = parent(1.0, ['p', 'q', 'p', 'q', 'p', 'q', 'p', 'q'])
  return { candidate: { authorId: 'a', samples, linesDelta: 3 }, parentSamples: parentRuns.map(r => r.valBpb), parentRuns, sigma: 0.01, parentIsBest: true, settings, realRate: 0.2, elsewhere }
}

t.test('a verification on another class counts toward the verdict', async t => {
  // H: the claim and one verification by b, both 4σ better; K: c's run 4σ (of K) better than K's parent.
  const samples = [run(0.96, 'a'), run(0.96, 'b')]
  const elsewhere = [onK([run(1.92, 'c')])]
  t.equal(decide(input(samples, elsewhere)).kind, 'merge')
  // The sequential policy looks at class H alone: b is one contributor, a second is wanted.
  t.equal(decide(input(samples, elsewhere, SEQUENTIAL)).kind, 'verify')
})

t.test("a run on another class is compared with that class's parent, never with this one's", async t => {
  // K's parent and c's run on K are both at 0.5: no gain there, though 0.5 below H's parent.
  const d = decide(input([run(0.96, 'a'), run(0.96, 'b')], [onK([run(0.5, 'c')], 0.5)]))
  t.not(d.kind, 'merge', d.message)
})

t.test('the win must hold without any one contributor, on every class at once', async t => {
  // b on H sees no gain; the win rests on c's two runs on K alone.
  const d = decide(input([run(0.96, 'a'), run(1.0, 'b')], [onK([run(1.90, 'c'), run(1.90, 'c')])]))
  t.not(d.kind, 'merge', d.message)
})

t.test("a parent on another class measured only by the contributor left out adds nothing", async t => {
  // K's parent runs are all c's own: without c, K drops out, and b's single run cannot carry it.
  const k: ClassRuns = { hardwareClass: 'k', samples: [run(1.92, 'c')], parentRuns: parent(2.0, ['c', 'c', 'c', 'c']), sigma: 0.02 }
  const d = decide(input([run(0.96, 'a'), run(0.995, 'b')], [k]))
  t.not(d.kind, 'merge', d.message)
})

t.test('a run on another class passes the same sanity check', async t => {
  const d = decide(input([run(0.96, 'a')], [onK([run(Number.NaN, 'c')])]))
  t.equal(d.kind, 'reject')
})

t.test('a change carried onto a newer best takes its runs on the other classes along, each against its parent there', async t => {
  // The origin: ann's claim on H (4σ better) and one verification by b there; c verified it on K,
  // 4σ of K better than K's parent. Session 14 (docs/RATCHET.md): the coordinator carried H's runs
  // alone, so c's run was lost to the change on the newer best.
  const onH = [run(0.96, 'a'), run(0.97, 'b')]
  const parentH = parent(1.0, ['p', 'q', 'p', 'q', 'p', 'q', 'p', 'q'])
  const ownClass = carriedFrom(onH, parentH, 0.01, new Set(['a']), undefined)!
  const everyClass = carriedFrom(onH, parentH, 0.01, new Set(['a']), undefined, DEFAULT_SEQUENTIAL, [onK([run(1.92, 'c')])])!
  t.same(ownClass.contributorIds, ['b'])
  t.same(everyClass.contributorIds, ['b', 'c'], "c's run goes with the change, and c is a witness of it")
  t.ok(everyClass.all.variance < ownClass.all.variance, 'surer with the run on K')
  t.ok(everyClass.independent!.variance < ownClass.independent!.variance, "the others' evidence too")
  // A run on K is compared with K's parent: at K's parent's level it shows no gain, though far below H's parent.
  const flat = carriedFrom(onH, parentH, 0.01, new Set(['a']), undefined, DEFAULT_SEQUENTIAL, [onK([run(0.5, 'c')], 0.5)])!
  t.ok(flat.all.delta > ownClass.all.delta, `a null run on K pulls the estimate toward no gain (${flat.all.delta} against ${ownClass.all.delta})`)
  // The author's own runs on another class are a claim there too, never a witness.
  const authors = carriedFrom(onH, parentH, 0.01, new Set(['a']), undefined, DEFAULT_SEQUENTIAL, [onK([run(1.92, 'a')])])!
  t.same(authors.contributorIds, ['b'])
  t.same(authors.independent, ownClass.independent)
})

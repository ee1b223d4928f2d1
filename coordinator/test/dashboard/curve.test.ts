import t from 'tap'
import { progressCurve, type CurveExperiment } from '../../src/dashboard/curve.ts'
import { noiseFloor, type NoiseFloor } from '../../src/ratchet/index.ts'

/** The campaign prior for every class, as the ratchet says before it has repeats. */
const prior = (): NoiseFloor => noiseFloor([], 'any', 0.01)

let clock = 0
function run(kind: CurveExperiment['kind'], valBpb: number | null, parentCommit: string, more: Partial<CurveExperiment> = {}): CurveExperiment {
  clock += 1000
  return { id: `e${clock}`, createdAt: clock, kind, status: 'measured', hardwareClass: 'h100-80g', valBpb, commit: `c${clock}`, parentCommit,
    description: '', contributor: 'alice', merge: null, ...more }
}

t.test('each class gets its own curve, busiest first', async t => {
  const curves = progressCurve([run('baseline', 1.5, 'seed', { hardwareClass: 'rtx4090-24g' }), run('baseline', 1.2, 'seed'), run('baseline', 1.21, 'seed')], prior)
  t.same(curves.map(c => [c.hardwareClass, c.points.length]), [['h100-80g', 2], ['rtx4090-24g', 1]])
})

t.test('the running best starts at the mean of the first best\'s baselines and steps down at each merge', async t => {
  const curve = progressCurve([
    run('baseline', 1.2, 'seed'), run('baseline', 1.22, 'seed'),
    run('explore', 1.25, 'seed', { status: 'discarded' }),
    run('explore', 1.09, 'seed', { commit: 'best1', status: 'kept', merge: { valAfter: 1.095, reverted: false } }),
  ], prior)[0]
  t.same(curve.best.map(b => b.valBpb), [1.2, 1.21, 1.095], 'the merge\'s recorded value, not the single claim')
  t.same(curve.points.map(p => p.group), ['measured', 'measured', 'tried', 'kept'])
})

t.test('a class that only measures bests found elsewhere still follows them down', async t => {
  const curve = progressCurve([run('baseline', 1.3, 'seed'), run('baseline', 1.25, 'best-from-another-class')], prior)[0]
  t.same(curve.best.map(b => b.valBpb), [1.3, 1.25])
})

t.test('a late baseline of a best the class has moved past does not pull the line back up', async t => {
  const curve = progressCurve([
    run('baseline', 1.3, 'seed'),
    run('explore', 1.2, 'seed', { commit: 'best1', status: 'kept', merge: { valAfter: 1.2, reverted: false } }),
    run('baseline', 1.31, 'seed'),
  ], prior)[0]
  t.same(curve.best.map(b => b.valBpb), [1.3, 1.2])
})

t.test('a reverted merge is drawn apart and leaves the running best', async t => {
  const curve = progressCurve([
    run('baseline', 1.3, 'seed'),
    run('explore', 1.2, 'seed', { commit: 'bad', status: 'kept', merge: { valAfter: 1.2, reverted: true } }),
  ], prior)[0]
  t.same(curve.best.map(b => b.valBpb), [1.3])
  t.equal(curve.points[1].group, 'reverted')
})

t.test('runs without a usable val_bpb are not points', async t => {
  const curve = progressCurve([run('baseline', 1.3, 'seed'), run('explore', null, 'seed', { status: 'crash' }), run('explore', Number.NaN, 'seed')], prior)
  t.equal(curve[0].points.length, 1)
})

t.test('each class\'s band is the σ the ratchet has for that class', async t => {
  const rows = [run('baseline', 1.3, 'seed'), run('baseline', 1.5, 'seed', { hardwareClass: 'rtx4090-24g' })]
  const asked: string[] = []
  const curves = progressCurve(rows, cls => {
    asked.push(cls)
    return noiseFloor([], cls, cls === 'h100-80g' ? 0.004 : 0.009)
  })
  t.same(curves.map(c => [c.hardwareClass, c.noise.sigma]), [['h100-80g', 0.004], ['rtx4090-24g', 0.009]])
  t.same(asked.sort(), ['h100-80g', 'rtx4090-24g'])
})

import t from 'tap'
import { CANDIDATE_KINDS, isCandidate, MEASURING_KINDS, UNIT_KINDS, UnitKind } from '../src/unit-kinds.ts'

t.test('explore and rebase runs are candidates; baseline and verify runs measure committed code', async t => {
  t.same(UNIT_KINDS.filter(isCandidate), ['explore', 'rebase'])
  t.same(UNIT_KINDS.filter(k => !isCandidate(k)), ['baseline', 'verify'])
})

t.test('every unit kind is either a candidate or a measurement, never both', async t => {
  t.same([...CANDIDATE_KINDS, ...MEASURING_KINDS].sort(), [...UNIT_KINDS].sort())
})

t.test('the schema accepts exactly the unit kinds', async t => {
  for (const k of UNIT_KINDS) t.ok(UnitKind.safeParse(k).success, k)
  t.notOk(UnitKind.safeParse('free').success)
  t.notOk(isCandidate('free'))
})

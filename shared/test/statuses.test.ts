import t from 'tap'
import { EXPERIMENT_STATUSES, FAILED_STATUSES, HYPOTHESIS_STATUSES, UNIT_STATES } from '../src/statuses.ts'

t.test('the failed run statuses are experiment statuses', async t => {
  for (const s of FAILED_STATUSES) t.ok((EXPERIMENT_STATUSES as readonly string[]).includes(s), s)
})

t.test('no status list repeats a word', async t => {
  for (const list of [UNIT_STATES, EXPERIMENT_STATUSES, HYPOTHESIS_STATUSES]) t.equal(new Set(list).size, list.length)
})

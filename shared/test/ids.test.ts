import t from 'tap'
import { newId } from '../src/ids.ts'

t.test('an id starts with the prefix that says what it names', async t => {
  t.match(newId('u'), /^u_[0-9a-z]+$/)
})

t.test('ids made in the same millisecond still differ', async t => {
  const ids = new Set(Array.from({ length: 100 }, () => newId('e')))
  t.equal(ids.size, 100)
})

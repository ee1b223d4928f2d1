import t from 'tap'
import { LineSplitter } from '../../src/runner/lines.ts'

t.test('newline-terminated text becomes permanent lines', async t => {
  const s = new LineSplitter()
  t.same(s.push('a\nb\n'), [{ text: 'a', transient: false }, { text: 'b', transient: false }])
})

t.test('a line split across chunks is joined', async t => {
  const s = new LineSplitter()
  t.same(s.push('hel'), [])
  t.same(s.push('lo\n'), [{ text: 'hello', transient: false }])
})

t.test('a lone carriage return ends a transient line', async t => {
  const s = new LineSplitter()
  t.same(s.push('step 1\rstep 2\rdone\n'), [
    { text: 'step 1', transient: true },
    { text: 'step 2', transient: true },
    { text: 'done', transient: false },
  ])
})

t.test('CRLF split between chunks is one permanent line end', async t => {
  const s = new LineSplitter()
  t.same(s.push('a\r'), [])
  t.same(s.push('\nb\r\n'), [{ text: 'a', transient: false }, { text: 'b', transient: false }])
})

t.test('end flushes an unterminated last line', async t => {
  const s = new LineSplitter()
  s.push('x\ntail')
  t.same(s.end(), [{ text: 'tail', transient: false }])
  t.same(s.end(), [])
})

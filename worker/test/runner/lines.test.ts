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

t.test('an endless line (no newline) is cut: the splitter holds at most its limit, and the line says what was cut', async t => {
  const s = new LineSplitter(100)
  const chunk = 'x'.repeat(64)
  const early: unknown[] = []
  for (let i = 0; i < 10_000; i++) early.push(...s.push(chunk))
  t.same(early, [], 'nothing ends while no newline comes')
  t.ok((s as unknown as { pending: string }).pending.length <= 100, 'at most the limit is held, however long the line')
  const [line, next] = s.push('end\nnext\n')
  t.equal(line.text, `${'x'.repeat(100)} [… ${64 * 10_000 - 100 + 3} more characters of this line cut]`)
  t.same(next, { text: 'next', transient: false }, 'the next line is whole')
})

t.test('each chunk is scanned once: 64 MiB on one line is split in linear time', async t => {
  // The old splitter scanned the whole pending line again for every chunk: 8 MiB took 3 s, 64 MiB
  // some 3 minutes of the worker's event loop. Linear, this is well under a second; the bound is
  // a minute so that a loaded machine cannot turn it red.
  const s = new LineSplitter()
  const chunk = 'x'.repeat(65536)
  const started = performance.now()
  for (let i = 0; i < 1024; i++) s.push(chunk)
  const [line] = s.push('\n')
  t.ok(performance.now() - started < 60_000, `${((performance.now() - started) / 1000).toFixed(2)} s`)
  t.match(line.text, /more characters of this line cut\]$/)
})

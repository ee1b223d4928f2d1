import t from 'tap'
import { bidiControlIn, DisplayName, plainText } from '../src/index.ts'

t.test('bidiControlIn names the file, line and character of the first bidirectional control', async t => {
  t.equal(bidiControlIn({ 'train.py': 'x = 1\n# fine: ñ, 中文, עברית\n' }), null, 'right-to-left letters themselves are fine')
  t.match(bidiControlIn({ 'a.py': 'ok\n', 'train.py': 'a = 1\nb = 2  # \u202e x\n' }), { file: 'train.py', line: 2, message: /^U\+202E is a Unicode bidirectional control/ })
  for (const c of ['\u202a', '\u202b', '\u202c', '\u202d', '\u202e', '\u2066', '\u2067', '\u2068', '\u2069']) t.ok(bidiControlIn({ f: c }), `U+${c.charCodeAt(0).toString(16)}`)
})

t.test('plainText makes control and bidirectional characters spaces; multiline keeps line breaks and tabs', async t => {
  t.equal(plainText('a\u001b[2J\u202eb\nc\td'), 'a [2J b c d')
  t.equal(plainText('a\r\n\u2066b\tc', true), 'a\n b\tc')
})

t.test('display names refuse control and bidirectional characters', async t => {
  t.ok(DisplayName.safeParse('gpu-0 (Zoë)').success)
  for (const bad of ['gpu\u202e0', 'a\u0007', 'x\u009b']) t.notOk(DisplayName.safeParse(bad).success, JSON.stringify(bad))
})

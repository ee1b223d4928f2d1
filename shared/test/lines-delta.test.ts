import t from 'tap'
import { linesDelta } from '../src/lines-delta.ts'

t.test('lines added and removed in several files net out', async t => {
  t.equal(linesDelta({ 'train.py': 'a\nb\nc\nd\ne\n', 'other.py': 'x\n' }, { 'train.py': 'a\nB\nc\n', 'other.py': 'x\ny\nz\n' }), 0)
})

t.test('a shorter candidate is negative', async t => {
  t.equal(linesDelta({ 'train.py': 'A = 1\nB = 2\nC = 3\n' }, { 'train.py': 'A = 1\n' }), -2)
})

t.test('a last line without a newline counts, as git counts it', async t => {
  t.equal(linesDelta({ 'train.py': '' }, { 'train.py': 'a\nb' }), 2)
  t.equal(linesDelta({ 'train.py': 'a\nb' }, { 'train.py': 'a\nb\n' }), 0)
})

t.test('a file only one side has counts all its lines', async t => {
  t.equal(linesDelta({}, { 'new.py': 'a\nb\n' }), 2)
  t.equal(linesDelta({ 'gone.py': 'a\nb\nc\n' }, {}), -3)
})

t.test('a binary file (a NUL byte) counts zero, like numstat\'s "-"', async t => {
  t.equal(linesDelta({ 'blob.bin': 'a\0\nb\n' }, { 'blob.bin': 'a\0\nb\nc\nd\n' }), 0)
  t.equal(linesDelta({}, {}), 0)
})

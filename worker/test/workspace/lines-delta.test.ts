import t from 'tap'
import { linesDeltaFromNumstat } from '../../src/workspace/lines-delta.ts'

t.test('sums added minus removed over files', async t => {
  t.equal(linesDeltaFromNumstat('3\t5\ttrain.py\n2\t0\tother.py\n'), 0)
})

t.test('a shorter candidate gives a negative delta', async t => {
  t.equal(linesDeltaFromNumstat('1\t4\ttrain.py\n'), -3)
})

t.test('binary files and empty output count as zero', async t => {
  t.equal(linesDeltaFromNumstat('-\t-\tblob.bin\n'), 0)
  t.equal(linesDeltaFromNumstat(''), 0)
})

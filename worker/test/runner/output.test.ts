import t from 'tap'
import { OutputCollector } from '../../src/runner/output.ts'

const line = (text: string, transient = false) => ({ text, transient })

t.test('the tail keeps only the last lines', async t => {
  const o = new OutputCollector(3)
  for (const n of [1, 2, 3, 4, 5]) o.add(line(`l${n}`))
  t.equal(o.logTail(), 'l3\nl4\nl5')
})

t.test('transient progress redraws collapse into the line that follows them', async t => {
  const o = new OutputCollector()
  o.add(line('start'))
  o.add(line('step 1', true))
  o.add(line('step 2', true))
  o.add(line('step 3'))
  t.equal(o.logTail(), 'start\nstep 3')
})

t.test('the summary text starts at the last --- line', async t => {
  const o = new OutputCollector()
  o.add(line('---'))
  o.add(line('old'))
  o.add(line('---'))
  o.add(line('val_bpb: 1.0'))
  t.equal(o.summaryText(), '---\nval_bpb: 1.0')
})

t.test('the summary survives a log far longer than the tail', async t => {
  const o = new OutputCollector(5)
  o.add(line('---'))
  for (let i = 0; i < 20; i++) o.add(line(`key${i}: ${i}`))
  t.match(o.summaryText(), /^---\nkey0: 0\n/)
  t.equal(o.logTail().split('\n').length, 5)
})

t.test('without a --- line the summary text is the tail', async t => {
  const o = new OutputCollector()
  o.add(line('Traceback'))
  t.equal(o.summaryText(), 'Traceback')
})

t.test('a tail of very long lines is cut from the front to the size limit', async t => {
  const o = new OutputCollector(50, 1000, 100)
  o.add(line('x'.repeat(500)))
  o.add(line('RuntimeError: the end'))
  const tail = o.logTail()
  t.equal(tail.length, 100)
  t.match(tail, /RuntimeError: the end$/)
})

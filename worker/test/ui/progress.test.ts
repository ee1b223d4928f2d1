import t from 'tap'
import { PassThrough } from 'node:stream'
import { clock, plainProgress, renderLane, terminalProgress } from '../../src/ui/progress.ts'

const run = { unitId: 'u1', title: 'MATRIX_LR 0.04 -> 0.06', budgetSeconds: 300 }

t.test('the live line shows step, share of the budget, loss, ETA and what is tried', async t => {
  const line = renderLane('gpu0', { ...run, progress: { step: 120, percent: 62.4, loss: 3.45121, remainingSeconds: 114 }, quarter: 0 }, 10)
  t.equal(line, 'gpu0 [██████░░░░]  62% step 120 loss 3.4512 ETA 1:54 · MATRIX_LR 0.04 -> 0.06')
  t.equal(clock(3725), '1:02:05')
})

t.test('without a terminal, progress becomes a plain line at each quarter of the budget', async t => {
  const lines: string[] = []
  const ui = plainProgress(l => lines.push(l))
  ui.start('', run)
  for (const [step, percent] of [[1, 0], [5, 10], [20, 26], [30, 49], [40, 51], [80, 100]]) ui.progress('', { step, percent, loss: 4, remainingSeconds: null })
  ui.stop('')
  ui.log('done')
  t.same(lines, ['u1: step 1 0% loss 4.0000', 'u1: step 20 26% loss 4.0000', 'u1: step 40 51% loss 4.0000', 'u1: step 80 100% loss 4.0000', 'done'])
})

t.test('on a terminal, log lines scroll above the live line, which is redrawn in place', async t => {
  const stream = Object.assign(new PassThrough(), { columns: 120, isTTY: true }) as unknown as NodeJS.WriteStream
  let out = ''
  ;(stream as unknown as PassThrough).on('data', b => { out += String(b) })
  const ui = terminalProgress(stream)
  ui.start('', run)
  ui.log('first')
  ui.progress('', { step: 3, percent: 50, loss: 4.2, remainingSeconds: 150 })
  await new Promise(r => setTimeout(r, 150))
  ui.stop('')
  t.match(out, /first\n/)
  t.match(out, /\r\x1b\[J.*step 3 loss 4\.2000 ETA 2:30/)
})

t.test('control characters in a log line or a title are printed as visible escapes, never obeyed', async t => {
  const lines: string[] = []
  const ui = plainProgress(l => lines.push(l))
  ui.log('crash: ValueError\x1b]52;c;Y3VybA==\x07\x1b[2J\ttab\nsecond line\r\u009b2J\u202e')
  t.same(lines, ['crash: ValueError\\u001b]52;c;Y3VybA==\\u0007\\u001b[2J\ttab\nsecond line\\u000d\\u009b2J\\u202e'])
  t.equal(renderLane('', { ...run, title: 'lr\x1b[31m up', progress: null, quarter: 0 }, 4), '[░░░░]   0% starting ETA 5:00 · lr\\u001b[31m up')
})

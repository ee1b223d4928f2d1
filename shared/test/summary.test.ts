import t from 'tap'
import { readFileSync } from 'node:fs'
import { parseProgressLine, parseSummary, SummaryParseError } from '../src/metrics.ts'

const BLOCK = `step 00952 | 99.9% | loss 2.1034 | tok/s 1468000 | mfu 39.8% | remaining 0s
---
val_bpb:          0.997900
training_seconds: 300.1
total_seconds:    325.9
peak_vram_mb:     45060.2
mfu_percent:      39.80
total_tokens_M:   499.6
num_steps:        953
num_params_M:     50.3
depth:            8
`

t.test('parses the summary block of DESIGN §10 into numbers', async t => {
  const m = parseSummary(BLOCK)
  t.same(m, { val_bpb: 0.9979, training_seconds: 300.1, total_seconds: 325.9, peak_vram_mb: 45060.2, mfu_percent: 39.8, total_tokens_M: 499.6, num_steps: 953, num_params_M: 50.3, depth: 8 })
})

t.test('parses the output of a real CPU run of train.py', async t => {
  const text = readFileSync(new URL('./fixtures/cpu-run.txt', import.meta.url), 'utf8')
  const m = parseSummary(text)
  t.ok(m.val_bpb > 0 && Number.isFinite(m.val_bpb))
  t.ok(m.num_steps > 0)
})

t.test('uses the last block when a log holds several', async t => {
  t.equal(parseSummary(BLOCK.replace('0.997900', '9.0') + '\n' + BLOCK).val_bpb, 0.9979)
})

t.test('truncated output is an error that names the missing keys, never a half result', async t => {
  const cut = BLOCK.split('\n').slice(0, 6).join('\n')
  t.throws(() => parseSummary(cut), { name: 'SummaryParseError', message: /missing mfu_percent, total_tokens_M, num_steps, num_params_M, depth/ })
})

t.test('output with no summary at all says the trainer did not finish', async t => {
  t.throws(() => parseSummary('Traceback (most recent call last):\nRuntimeError: boom'), /did not print its final "---"/)
})

t.test('a garbled value is an error naming the key', async t => {
  t.throws(() => parseSummary(BLOCK.replace('325.9', '32x5.9')), { message: /total_seconds.*not a number/ })
})

t.test('a duplicated key is an error', async t => {
  t.throws(() => parseSummary(BLOCK + 'depth: 9\n'), /appears twice/)
})

t.test('a non-finite val_bpb is refused', async t => {
  t.throws(() => parseSummary(BLOCK.replace('0.997900', 'nan')), SummaryParseError)
  t.throws(() => parseSummary(BLOCK.replace('0.997900', 'inf')), SummaryParseError)
})

t.test('a fractional step count is refused', async t => {
  t.throws(() => parseSummary(BLOCK.replace('953', '95.3')), SummaryParseError)
})

t.test('progress lines give step, percent, loss and remaining time', async t => {
  t.same(parseProgressLine('step 00042 | 37.5% | loss 4.1234 | tok/s 12345 | mfu 38.2% | remaining 187s'), { step: 42, percent: 37.5, loss: 4.1234, remainingSeconds: 187 })
  t.equal(parseProgressLine('compiling the model...'), null)
})

// A progress line is campaign code's output, and it rides in every heartbeat of the worker. A value
// the heartbeat's schema refuses ("1.2.3%" read as NaN, sent as null; a step past 2^53) made the
// coordinator refuse the worker's heartbeats for as long as the run lasted: the leases of all its
// units, other contributors' included, went unrenewed.
t.test('a progress line whose numbers the heartbeat would refuse is no progress at all', async t => {
  const { Heartbeat } = await import('../src/protocol.ts')
  for (const line of ['step 00001 | 1.2.3% | loss 4.1', 'step 99999999999999999999 | 5% | loss 4', 'step 1 | 5% | loss nan | remaining 1.2.3s', 'step 1 | 5% | loss inf']) {
    const p = parseProgressLine(line)
    const wire = JSON.parse(JSON.stringify({ workerId: 'w', units: [{ unitId: 'u', leaseToken: 't', progress: p }] }))
    t.ok(Heartbeat.safeParse(wire).success, `${line}: ${JSON.stringify(p)} goes into a heartbeat the coordinator accepts`)
  }
  t.same(parseProgressLine('step 1 | 5% | loss nan | remaining 1.2.3s'), { step: 1, percent: 5, loss: null, remainingSeconds: null }, 'a diverged loss is shown as unknown')
})

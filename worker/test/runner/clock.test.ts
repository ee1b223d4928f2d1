import t from 'tap'
import { existsSync, readFileSync } from 'node:fs'
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { findPython } from '@autoresearch-grid/trainer'
import { openMeasureLab, trainerDir } from '../fixtures/measure-lab.ts'
import { clockLimits, markerOf, readClock, READY_MARKER, SAVED_MARKER } from '../../src/runner/clock.ts'
import { DESCRIPTION_FILES, openGate, TRAINING_SPLIT } from '../../src/runner/gate.ts'

// The worker's clock (runner/clock.ts): training gets its data only when it asks for it, the
// clock runs from then to the saved weights, and a run that trains past budget + slack is stopped
// and rejected, whatever its own clock says.


t.test('the markers are the lines prepare.py prints, and nothing else', async t => {
  const prepare = readFileSync(join(trainerDir, 'prepare.py'), 'utf8')
  t.match(prepare, `READY_MARKER = "${READY_MARKER}"`)
  t.match(prepare, `SAVED_MARKER = "${SAVED_MARKER}"`)
  t.equal(markerOf(READY_MARKER), 'ready')
  t.equal(markerOf(`  ${SAVED_MARKER}\r`), 'saved')
  t.equal(markerOf(`step 1 | ${SAVED_MARKER}`), null, 'only a whole line counts')
})

t.test('reading the clock', async t => {
  const limits = { budgetSeconds: 60, startupSeconds: 100, slackSeconds: 6 }
  t.same(readClock({ launched: 0, ready: 8000, go: 9000, saved: 70_000, ended: 70_100 }, limits), { startupSeconds: 8, trainingSeconds: 61, over: null })
  t.equal(readClock({ launched: 0, ready: 8000, go: 9000, saved: 76_000, ended: 76_100 }, limits).over, 'budget', 'saved past budget + slack')
  t.equal(readClock({ launched: 0, ready: 8000, go: 9000, saved: null, ended: 75_000 }, limits).over, 'budget', 'stopped at the limit, never saved')
  t.equal(readClock({ launched: 0, ready: null, go: null, saved: null, ended: 100_000 }, limits).over, 'startup')
  t.same(readClock({ launched: 0, ready: null, go: null, saved: null, ended: 5000 }, limits), { startupSeconds: 5, trainingSeconds: null, over: null }, 'a crash in start-up')
  t.ok(clockLimits('gpu', 300).slackSeconds <= 15, 'on a GPU a run may overrun its budget by little')
  t.ok(clockLimits('gpu', 60).slackSeconds <= 7)
})

t.test('the gate holds the data set\'s description, and the training split only once released', async t => {
  const dir = t.testdir(Object.fromEntries([...DESCRIPTION_FILES, ...TRAINING_SPLIT, 'val.bin', 'val_docs.npy'].map(f => [f, f])))
  const gate = await openGate(dir, join(dir, 'run'))
  t.same((await readdir(gate.dir)).sort(), [...DESCRIPTION_FILES].sort())
  await gate.release()
  t.same((await readdir(gate.dir)).sort(), [...DESCRIPTION_FILES, ...TRAINING_SPLIT].sort(), 'never the validation split')
  t.equal(readFileSync(join(gate.dir, 'train.bin'), 'utf8'), 'train.bin')
  await gate.remove()
  t.notOk(existsSync(gate.dir))
})

const python = await findPython().catch(() => null)
t.test('the clock on the real trainer', { skip: python ? false : 'needs a Python with torch' }, async t => {
  if (!python) return
  const lab = await openMeasureLab(python.path, t.testdir())
  if (lab.problem !== null) return t.fail(`no sandbox here (npm test installs bubblewrap): ${lab.problem}`)
  const { measure, train } = lab
  const edit = (anchor: string, replacement: string) => {
    t.ok(train.includes(anchor), `train.py still has ${JSON.stringify(anchor)}`)
    return train.replace(anchor, replacement)
  }

  t.test('start-up sees no training data; the run gets it when it asks', async t => {
    const peek = edit('def main():\n', 'def main():\n    import os\n    print("PEEK", sorted(os.listdir(os.environ["AUTORESEARCH_DATA"])), flush=True)\n')
    const m = await measure('peek', peek)
    t.equal(m.status, 'ok', m.error ?? '')
    t.match(m.logTail, /PEEK \['meta.json', 'token_bytes.npy', 'tokenizer.model'\]/, 'no train.bin, no val.bin before it asks')
    t.ok(m.trainSeconds >= 2 && m.trainSeconds < 2 + clockLimits('cpu-tiny', 2).slackSeconds, `trained ${m.trainSeconds.toFixed(1)}s by the worker's clock`)
    t.ok(m.startupSeconds > 0)
  })

  t.test('a warm start (torch imported before the turn, as on a GPU) is measured the same way', async t => {
    const m = await measure('warm', train, { warmStart: true })
    t.equal(m.status, 'ok', m.error ?? '')
    t.ok(m.trainSeconds >= 2 && m.trainSeconds < 2 + clockLimits('cpu-tiny', 2).slackSeconds, `trained ${m.trainSeconds.toFixed(1)}s by the worker's clock`)
    t.ok(m.metrics && m.metrics.val_bpb > 0, `val_bpb ${m.metrics?.val_bpb}`)
  })

  t.test('a run that trains past its budget is stopped and rejected, whatever its own clock says', async t => {
    // Its loop never sees the budget run out: it reports 2 s while it trains for a minute.
    const greedy = edit('done = step > UNTIMED_STEPS and train_time + dt / 2 >= TIME_BUDGET', 'done = time.monotonic() - T_GO > 60 if "T_GO" in globals() else False; globals().setdefault("T_GO", time.monotonic()); train_time = min(train_time, TIME_BUDGET - 0.1)')
    // A slack of 4 s rather than cpu-tiny's 20 s: the run is over its budget whatever the load, and the test waits less.
    const limits = { ...clockLimits('cpu-tiny', 2), slackSeconds: 4 }
    const m = await measure('greedy', greedy, { limits })
    t.equal(m.status, 'rejected-measurement', m.error ?? '')
    t.match(m.error, /did not end within its budget/)
    t.ok(m.trainSeconds < 60, `stopped ${m.trainSeconds.toFixed(1)}s after it got its data (it would train 60 s)`)
  })

  t.test('the run ends when the weights are saved: nothing after save_model runs', async t => {
    // What it prints at once may race the worker's kill; what it would do seconds later never happens.
    // Under __main__: the evaluator's model servers import this train.py, and would sleep through it too.
    const lingering = `${train}\nif __name__ == "__main__":\n    import time as _t\n    _t.sleep(8)\n    print("STILL HERE", flush=True)\n    _t.sleep(120)\n`
    const m = await measure('lingering', lingering)
    t.equal(m.status, 'ok', m.error ?? '')
    t.notMatch(m.logTail, /STILL HERE/)
    t.ok(m.trainSeconds < 30)
  })

  t.test('a run that never asks for its data trained nothing: a summary that claims training is a forged claim', async t => {
    const lazy = 'from prepare import save_model\nimport torch\nprint("---")\n' +
      'for k, v in dict(training_seconds=2, total_seconds=3, peak_vram_mb=0, mfu_percent=0, total_tokens_M=0, num_steps=1, num_params_M=0, depth=1).items(): print(f"{k}: {v}")\n'
    const m = await measure('lazy', lazy)
    t.equal(m.status, 'rejected-measurement')
    t.match(m.error, /claims 2s of training, but it never asked for its training data/)
  })
})

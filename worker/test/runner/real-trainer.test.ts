import t from 'tap'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Progress } from '@autoresearch-grid/shared'
import { findPython } from '@autoresearch-grid/trainer'
import { sharedCorpus } from '../fixtures/corpus.ts'
import { prepareRunDir } from '../../src/runner/run-dir.ts'
import { runTrainer } from '../../src/runner/trainer.ts'
import { trainAndMeasure } from '../../src/runner/measure.ts'
import { detectSandbox } from '../../src/sandbox/detect.ts'

// End to end on the real trainer, cpu-tiny profile: a small prepared data set, build a run
// directory, train for a few seconds. Slow (tens of seconds on 2 cores), so only two runs.
const trainerDir = fileURLToPath(new URL('../../../trainer/', import.meta.url))
const ready = existsSync(join(trainerDir, 'prepare.py')) && existsSync(join(trainerDir, 'train.py'))
const python = ready ? await findPython().catch(() => null) : null

t.test('the real trainer', { skip: python ? false : 'needs trainer/prepare.py, trainer/train.py and a Python with torch' }, async t => {
  if (!python) return
  // The data set the worker tests share (fixtures/corpus.ts); preparing it is trainer/js's test.
  const data = await sharedCorpus()
  const cacheDir = data.cacheDir
  const scratch = t.testdir()
  const train = readFileSync(join(trainerDir, 'train.py'), 'utf8')
  const run = async (source: string, onProgress?: (p: Progress) => void) => {
    const runDir = join(scratch, 'run')
    await prepareRunDir({ runDir, trainerDir, files: { 'train.py': source } })
    return runTrainer({
      python: python.path, runDir, budgetSeconds: 2, profile: 'cpu-tiny', seed: 1, cacheDir,
      dataDir: data.dataDir, hardTimeoutSeconds: 300, onProgress,
    })
  }

  t.test('trains in the sandbox on the training split, and the trusted evaluator measures val_bpb', async t => {
    const sandbox = await detectSandbox(python.path)
    if (!sandbox.ok) return t.fail(`no sandbox here (npm test installs bubblewrap): ${sandbox.problem}`)
    const progress: Progress[] = []
    const runDir = join(scratch, 'measured')
    await prepareRunDir({ runDir, trainerDir, files: { 'train.py': train } })
    const m = await trainAndMeasure({
      python: python.path, trainerDir, runDir, budgetSeconds: 2, profile: 'cpu-tiny', seed: 1, cacheDir, dataDir: data.dataDir,
      sandbox: sandbox.host, sourceHash: 'real-trainer-test', onProgress: p => progress.push(p),
    })
    t.equal(m.status, 'ok', m.error ?? '')
    t.ok(m.metrics && Number.isFinite(m.metrics.val_bpb) && m.metrics.val_bpb > 0, `val_bpb ${m.metrics?.val_bpb}`)
    t.equal(m.metrics?.val_bpb, m.evaluation?.val_bpb, 'the number is the evaluator\'s')
    t.equal(m.evaluation?.probe_max_delta, 0, 'a causal model: the probe moved nothing')
    t.ok(m.metrics!.training_seconds <= m.trainSeconds, 'training time is capped by the worker\'s clock')
    t.ok(progress.length >= 1, `${progress.length} progress lines`)
    t.match(m.logTail, 'data: /sandbox/data', 'training read the data set through the sandbox')
    t.ok(existsSync(join(runDir, 'model.safetensors')), 'training saved its weights')
  })

  t.test('a train.py whose loss is NaN is reported as a failed run with its log', async t => {
    const nan = train.replace(/^LOGIT_SOFTCAP = .*$/m, 'LOGIT_SOFTCAP = float("nan")')
    t.not(nan, train, 'the edit applied')
    const r = await run(nan)
    t.equal(r.summary, null)
    t.not(r.exitCode, 0)
    t.match(r.error, /exited with code/)
    t.match(r.logTail, /diverged|not finite|nan/i)
  })
})

import t from 'tap'
import { copyFileSync, existsSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { findPython } from '../find-python.ts'
import { ensurePrepared, PrepareError } from '../prepare.ts'

// Integration with the real trainer: one small data set (512-token vocabulary, ~10 s on 2 cores)
// is prepared into a fresh cache and reused by the tests below, in order.
const trainerDir = fileURLToPath(new URL('../../', import.meta.url))
const hasTrainer = existsSync(join(trainerDir, 'prepare.py'))
const python = hasTrainer ? await findPython().catch(() => null) : null

t.test('with the real trainer', { skip: python ? false : 'needs trainer/prepare.py and a Python with torch' }, async t => {
  if (!python) return
  const cacheDir = t.testdir()
  const base = { python: python.path, trainerDir, cacheDir, vocabSize: 512, profile: 'cpu-tiny' as const }
  let first: Awaited<ReturnType<typeof ensurePrepared>>

  t.test('first call prepares the data and reports its fingerprint and tokenizer', async t => {
    const lines: string[] = []
    first = await ensurePrepared({ ...base, onLine: l => lines.push(l) })
    t.equal(first.prepared, true)
    t.match(first.fingerprint, /^[0-9a-f]{64}$/)
    t.ok(existsSync(first.tokenizerPath))
    t.ok(lines.some(l => /tokeniz/.test(l)), 'prepare output was streamed')
  })

  t.test('a second call finds the prepared data without preparing again', async t => {
    const again = await ensurePrepared(base)
    t.equal(again.prepared, false)
    t.equal(again.fingerprint, first.fingerprint)
  })

  t.test('a served tokenizer file is used, and the same tokenizer reproduces the fingerprint', async t => {
    const served = join(t.testdir(), 'campaign.model')
    copyFileSync(first.tokenizerPath, served)
    const withServed = await ensurePrepared({ ...base, tokenizerFile: served })
    t.equal(withServed.prepared, true)
    t.not(withServed.dataDir, first.dataDir)
    t.equal(withServed.fingerprint, first.fingerprint)
    t.equal((await ensurePrepared({ ...base, tokenizerFile: served })).prepared, false)
  })

  t.test('the fingerprint depends on the profile', async t => {
    const gpu = await ensurePrepared({ ...base, profile: 'gpu' })
    t.not(gpu.fingerprint, first.fingerprint)
  })

  t.test('a failing prepare raises an error with the cause and the log tail', async t => {
    const err = await ensurePrepared({ ...base, source: 'dir:/nonexistent/corpus' }).then(() => null, (e: Error) => e)
    t.type(err, PrepareError)
    t.match(err?.message, /failed \(exit code 1\): error: .*is not a folder/)
    t.match(err?.message, /prepare log/)
  })
})

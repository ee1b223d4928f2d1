import t from 'tap'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { findPython } from '@autoresearch-grid/trainer'
import { sharedCorpus } from '../fixtures/corpus.ts'
import { detectSandbox } from '../../src/sandbox/detect.ts'
import { removeTree } from '../../src/runner/remove-tree.ts'
import { openLab, runVariant } from '../fixtures/hostile/harness.ts'
import type { Variant } from '../fixtures/hostile/variants.ts'

// The sandbox's /tmp, /dev/shm and HOME are tmpfs: memory. Files there belong to no process, so
// the kernel's OOM killer, which picks a process by its own memory, never picks the run that filled
// them: it kills the worker or the volunteer's own programs instead. Each is bounded now
// (HostLayout.tmpfsBytes, 4 GiB by default); this test sets a bound of 64 MiB and has train.py
// write 96 MiB into each, through the real runner and bwrap.
const trainerDir = fileURLToPath(new URL('../../../trainer/', import.meta.url))
const python = await findPython().catch(() => null)

const FILL: Variant = {
  name: 'fills the sandbox\'s tmpfs folders with memory no process owns',
  cls: 'kernel',
  phase: 'train',
  expect: 'effect',
  control: 'unsandboxed it would fill the host\'s own /tmp and /dev/shm',
  payload: `
for d in ("/tmp", "/dev/shm", os.environ.get("HOME", "/tmp")):
    p, written = os.path.join(d, "fill"), 0
    try:
        with open(p, "wb", buffering=0) as f:
            for _ in range(12):
                f.write(b"x" * (8 << 20))
                written += 8
    except OSError as e:
        print(d, "stopped at", written, "MiB:", e)
    if written > 64:
        effect("held", written, "MiB of memory in", d)
    os.unlink(p)`.trim(),
}

t.test('train.py cannot hold more memory in the sandbox\'s tmpfs folders than their bound', { skip: python ? false : 'needs a Python with torch' }, async t => {
  if (!python) return
  const found = await detectSandbox(python.path)
  if (!found.ok) return t.fail(`no sandbox here: ${found.problem}`)
  const data = await sharedCorpus()
  const lab = await openLab(t, python.path, trainerDir, data.dataDir)
  const dir = join(t.testdir(), 'sandboxed')
  mkdirSync(dir, { recursive: true })
  try {
    const sand = await runVariant(lab, FILL, dir, { ...found.host, tmpfsBytes: 64 << 20 })
    t.same(sand.effects, [], `no effect: ${sand.effects.join('; ').slice(0, 400)}`)
    t.match(sand.m.logTail, /\/dev\/shm stopped at \d+ MiB: \[Errno 28\] No space left on device/, 'the write stops at the bound')
  } finally {
    await removeTree(dir)
  }
})

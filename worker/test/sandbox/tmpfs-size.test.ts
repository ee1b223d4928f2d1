import t from 'tap'
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { findPython } from '@autoresearch-grid/trainer'
import { sharedCorpus } from '../fixtures/corpus.ts'
import { detectSandbox, tmpfsSizeProblem } from '../../src/sandbox/detect.ts'
import { bwrapCommand } from '../../src/sandbox/bwrap.ts'
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

// `--size` came with bubblewrap 0.7.0 (Ubuntu 22.04 ships 0.6.1, Debian 11 0.4.1) and a setuid bwrap
// refuses it: there every sandbox, the worker's own check included, failed on the option. The
// tmpfs go unbounded there instead, and the worker says so.
t.test('tmpfsSizeProblem: which bwrap can bound a tmpfs', async t => {
  t.equal(tmpfsSizeProblem('bubblewrap 0.8.0', false), null)
  t.equal(tmpfsSizeProblem('bubblewrap 0.7.0', false), null)
  t.equal(tmpfsSizeProblem('bubblewrap 0.11.1', false), null)
  t.match(tmpfsSizeProblem('bubblewrap 0.6.1', false), /unbounded: bubblewrap 0\.6\.1 has no --size/)
  t.match(tmpfsSizeProblem('bubblewrap 0.4.1', false), /has no --size/)
  t.match(tmpfsSizeProblem('bubblewrap 0.8.0', true), /setuid/)
  t.match(tmpfsSizeProblem('something else', false), /version is unknown/)
})

t.test('a bwrap without --size still gives a working sandbox, its tmpfs unbounded and said so', { skip: python ? false : 'needs a Python with torch' }, async t => {
  if (!python) return
  const real = await detectSandbox(python.path)
  if (!real.ok) return t.fail(`no sandbox here: ${real.problem}`)
  t.notOk(bwrapCommand(real.host, { mounts: [], env: {}, cwd: '/', command: ['true'] }).includes('--size') && real.how.includes('unbounded'), 'the real one bounds them, or says it cannot')
  // An old bubblewrap: version 0.6.1, and --size an unknown option, as bwrap answers one.
  const dir = t.testdir({})
  const old = join(dir, 'bwrap')
  writeFileSync(old, `#!/bin/sh\n[ "$1" = --version ] && { echo "bubblewrap 0.6.1"; exit 0; }\nfor a in "$@"; do [ "$a" = --size ] && { echo "bwrap: Unknown option --size" >&2; exit 1; }; done\nexec ${real.host.bwrap} "$@"\n`)
  chmodSync(old, 0o755)
  const found = await detectSandbox(python.path, { bwrap: old, fresh: true })
  if (!found.ok) return t.fail(`the old bwrap gave no sandbox: ${found.problem}`)
  t.equal(found.host.tmpfsBytes, 0)
  t.match(found.how, /tmpfs sizes unbounded: bubblewrap 0\.6\.1 has no --size/)
  t.notOk(bwrapCommand(found.host, { mounts: [], env: {}, cwd: '/', command: ['true'] }).includes('--size'))
})

import t from 'tap'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { execa } from 'execa'
import { findPython } from '@autoresearch-grid/trainer'
import { sharedCorpus } from '../fixtures/corpus.ts'
import { detectSandbox } from '../../src/sandbox/detect.ts'

// The sandbox was started as `bwrap`, found on PATH, and the evaluator starts its model servers
// from the run folder (its working directory), after training wrote there. Where PATH holds an
// empty entry (or `.`), which means the working directory, a train.py that left an executable named
// `bwrap` in its run folder had it run by evaluate.py, outside any sandbox, as the worker's user.
const trainerDir = fileURLToPath(new URL('../../../trainer/', import.meta.url))
const fixture = fileURLToPath(new URL('../fixtures/hostile/measure-process.ts', import.meta.url))
const python = await findPython().catch(() => null)

const PLANTER = (marker: string) => `
import os, time
folder = os.environ["AUTORESEARCH_DATA"]
print("autoresearch: ready for the training data", flush=True)
while not os.path.exists(os.path.join(folder, "train.bin")):
    time.sleep(0.01)
for name in ("bwrap", "python3", "python"):
    with open(name, "w") as f:
        f.write("#!/bin/sh\\necho ran > ${marker}\\nexit 1\\n")
    os.chmod(name, 0o755)
print("---\\ntraining_seconds: 0.1\\ntotal_seconds: 0.2\\npeak_vram_mb: 0\\nmfu_percent: 0\\ntotal_tokens_M: 0\\nnum_steps: 1\\nnum_params_M: 0.3\\ndepth: 1", flush=True)
`

t.test('an executable train.py leaves in its run folder never runs outside the sandbox, whatever PATH holds', { skip: python ? false : 'needs a Python with torch' }, async t => {
  if (!python) return
  const data = await sharedCorpus()
  const dir = t.testdir()
  const marker = join(dir, 'PLANTED-RAN')
  writeFileSync(join(dir, 'train.py'), PLANTER(marker))
  const r = await execa(process.execPath, ['--import', 'tsx', fixture, join(dir, 'run'), trainerDir, data.dataDir, join(dir, 'cache'), '1', join(dir, 'train.py')], {
    reject: false, all: true, env: { PATH: `:${process.env.PATH ?? '/usr/bin:/bin'}`, AUTORESEARCH_PYTHON: python.path, NODE_OPTIONS: '' },
  })
  const last = String(r.stdout).trim().split('\n').pop() ?? ''
  t.ok(last.startsWith('{'), `the worker process measured the run: ${last.slice(0, 300) || String(r.all).slice(-500)}`)
  t.notOk(existsSync(marker), 'nothing the run planted ran on the host')
})

t.test('the sandbox is started by bwrap\'s absolute path, never looked up on PATH at run time', { skip: python ? false : 'needs a Python with torch' }, async t => {
  if (!python) return
  const found = await detectSandbox(python.path)
  if (!found.ok) return t.fail(`no sandbox here: ${found.problem}`)
  t.ok(found.host.bwrap.startsWith('/'), found.host.bwrap)
})

// The same for libraries: `export LD_LIBRARY_PATH=$LD_LIBRARY_PATH:/usr/local/cuda/lib64` on a
// machine where it was empty gives an empty first entry, and the loader reads that as the working
// directory. The launcher and evaluate.py started in the run folder after training: a libexpat.so.1
// that train.py left there (a shim that loads the real one, and runs its own code first) was loaded
// into both, outside the sandbox, as the worker's user.
const SHIM = `
#include <stdio.h>
__attribute__((constructor)) static void planted(void) {
    FILE *f = fopen(MARKER, "a");
    if (f) { fputs("loaded outside the sandbox\\n", f); fclose(f); }
}
`

const hasCc = existsSync('/usr/bin/cc') && existsSync('/lib/x86_64-linux-gnu/libexpat.so.1')

t.test('a library train.py leaves in its run folder is never loaded outside the sandbox, whatever LD_LIBRARY_PATH holds', { skip: !python ? 'needs a Python with torch' : !hasCc ? 'needs cc and an x86-64 libexpat to build the planted library' : false }, async t => {
  if (!python) return
  const data = await sharedCorpus()
  const dir = t.testdir()
  const marker = join(dir, 'PLANTED-LIB-RAN')
  writeFileSync(join(dir, 'empty.c'), 'void arg_stub(void) {}\n')
  writeFileSync(join(dir, 'shim.c'), SHIM)
  await execa('cc', ['-shared', '-fPIC', '-o', join(dir, 'real.so'), '-Wl,-soname,/lib/x86_64-linux-gnu/libexpat.so.1', join(dir, 'empty.c')])
  await execa('cc', ['-shared', '-fPIC', `-DMARKER="${marker}"`, '-o', join(dir, 'libexpat.so.1'), join(dir, 'shim.c'), '-Wl,--no-as-needed', join(dir, 'real.so'), '-Wl,-soname,libexpat.so.1'])
  const shim = readFileSync(join(dir, 'libexpat.so.1')).toString('base64')
  writeFileSync(join(dir, 'train.py'), PLANTER(join(dir, 'unused')).replace('for name in', `open("libexpat.so.1", "wb").write(__import__("base64").b64decode("${shim}"))\nfor name in`))
  const r = await execa(process.execPath, ['--import', 'tsx', fixture, join(dir, 'run'), trainerDir, data.dataDir, join(dir, 'cache'), '1', join(dir, 'train.py')], {
    reject: false, all: true, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LD_LIBRARY_PATH: ':/usr/local/cuda/lib64', AUTORESEARCH_PYTHON: python.path, NODE_OPTIONS: '' },
  })
  const last = String(r.stdout).trim().split('\n').pop() ?? ''
  t.ok(last.startsWith('{'), `the worker process measured the run: ${last.slice(0, 300) || String(r.all).slice(-500)}`)
  t.notOk(existsSync(marker), 'nothing the run planted was loaded on the host')
})

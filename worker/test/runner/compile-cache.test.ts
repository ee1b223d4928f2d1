import t from 'tap'
import { spawn } from 'node:child_process'
import { existsSync, lstatSync, mkdirSync, readdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { findPython } from '@autoresearch-grid/trainer'
import { cacheForRun, cacheForSource } from '../../src/runner/compile-cache.ts'

// What a run's start-up compiled before go is the cache proper, and the next run of the source
// must find it: the links that freeze it at go change each file's ctime too, and on a file system
// that stamps ctime to the nanosecond (multigrain timestamps) a `since` taken in the same
// millisecond read them as written after go. 170 of 200 runs lost their whole cache so.
t.test('start-up files survive the freeze at go, run after run', async t => {
  const dir = t.testdir()
  const runs = 50
  let kept = 0
  for (let i = 0; i < runs; i++) {
    const source = await cacheForSource(join(dir, String(i)), 'abc')
    const run = await cacheForRun(join(dir, String(i)), 'abc')
    mkdirSync(join(run.dir, 'inductor'), { recursive: true })
    writeFileSync(join(run.dir, 'inductor', 'compiled.py'), 'compiled before go')
    await run.atGo()
    await run.close()
    if (existsSync(join(source, 'inductor', 'compiled.py'))) kept++
  }
  t.equal(kept, runs, 'every run kept what its start-up wrote')
})

t.test('a file written after go is not kept, nor one written over in place', async t => {
  const dir = t.testdir()
  const source = await cacheForSource(dir, 'abc')
  const first = await cacheForRun(dir, 'abc')
  writeFileSync(join(first.dir, 'startup.bin'), 'before')
  await first.atGo()
  await first.close()
  const second = await cacheForRun(dir, 'abc')
  await second.atGo()
  writeFileSync(join(second.dir, 'startup.bin'), 'after go')
  writeFileSync(join(second.dir, 'stash.bin'), 'after go')
  await second.close()
  t.notOk(existsSync(join(source, 'stash.bin')), 'new after go: dropped')
  t.notOk(existsSync(join(source, 'startup.bin')), 'written in place after go: dropped')
})

// The run's cache is its sandbox's to change while the worker freezes it at go. A train.py that
// swapped a folder of its cache for a symlink to a host folder as the worker listed it (renameat2
// RENAME_EXCHANGE, timed by the folder's atime) had the worker look the folder's entries up through
// the link, outside the sandbox: the volunteer's SSH key was hard-linked into the source's cache,
// where the next run of the same source could read and write it (8 of 8 tries, through the real
// runner and bwrap). Here a plain process plays the sandbox, as fast as the worker.
const SWAPPER = `
import ctypes, os, platform, sys, time
libc = ctypes.CDLL(None, use_errno=True)
RENAMEAT2 = {"x86_64": 316, "aarch64": 276}[platform.machine()]
pairs = [(d, d + ".link") for d in sys.argv[1:]]
for d, _ in pairs:
    os.utime(d, ns=(0, time.time_ns()))  # an atime before the mtime: listing d sets it
print("ready", flush=True)
deadline = time.monotonic() + 60
while pairs and time.monotonic() < deadline:
    for d, s in list(pairs):
        if os.stat(d).st_atime_ns != 0:  # the worker listed d: it looks d's entry up next
            libc.syscall(RENAMEAT2, -100, d.encode(), -100, s.encode(), 2)  # renameat2(RENAME_EXCHANGE)
            pairs.remove((d, s))
`

const python = await findPython().catch(() => null)

t.test('a folder swapped for a symlink while the worker freezes the cache is never followed', { skip: process.platform !== 'linux' ? 'renameat2 is Linux\'s' : python ? false : 'needs a Python' }, async t => {
  if (!python) return
  const dir = t.testdir()
  const host = join(dir, 'home', '.ssh')
  mkdirSync(host, { recursive: true })
  writeFileSync(join(host, 'id_ed25519'), 'the volunteer\'s key')
  const hostKey = statSync(join(host, 'id_ed25519')).ino
  const reached: string[] = []
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name)
      const st = lstatSync(p)
      if (st.isDirectory()) walk(p)
      else if (st.ino === hostKey) reached.push(p)
    }
  }
  for (let round = 0; round < 6; round++) { // the swap is timed by a poll: each round may miss
    const source = await cacheForSource(join(dir, 'cache'), `source${round}`)
    const run = await cacheForRun(join(dir, 'cache'), `source${round}`)
    const decoys: string[] = []
    for (let i = 0; i < 8; i++) {
      const d = join(run.dir, 'inductor', `d${i}`)
      mkdirSync(d, { recursive: true })
      writeFileSync(join(d, 'id_ed25519'), 'decoy') // the one name the host folder has
      symlinkSync(host, `${d}.link`)
      decoys.push(d)
    }
    const swapper = spawn(python.path, ['-c', SWAPPER, ...decoys], { stdio: ['ignore', 'pipe', 'inherit'] })
    await new Promise<void>(resolve => swapper.stdout!.once('data', () => resolve()))
    await run.atGo().catch(() => {}) // a tree that changes under the walk may fail it; following a link may not
    swapper.kill('SIGKILL')
    await run.close()
    walk(source)
  }
  t.same(reached, [], 'no host file was linked into the cache')
})

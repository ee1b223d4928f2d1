import t from 'tap'
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import { existsSync, linkSync, lstatSync, mkdirSync, readdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
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

// A file linked as often as the file system allows (65,000 on ext4) cannot be linked once more: the
// freeze at go copied it instead, once for every name. A run that made one big file and 64,999 names
// for it had the worker write 65,000 times its size, off the clock and with no limit, while every
// later run of the GPU waited for its turn behind it. Such names are left out now.
t.test('a file linked as often as the file system allows is not copied once per name at go', async t => {
  const dir = t.testdir()
  const source = await cacheForSource(dir, 'abc')
  const run = await cacheForRun(dir, 'abc')
  const folder = join(run.dir, 'inductor')
  mkdirSync(folder, { recursive: true })
  const original = join(folder, 'f0')
  writeFileSync(original, 'x')
  let names = 1
  try {
    for (; names < 70_000; names++) linkSync(original, join(folder, `f${names}`))
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EMLINK') throw err
  }
  if (names >= 70_000) {
    t.comment('skipped: this file system has no small limit on links')
    return
  }
  const ino = statSync(original).ino
  await run.atGo()
  await run.close()
  const copies = readdirSync(join(source, 'inductor')).filter(n => statSync(join(source, 'inductor', n)).ino !== ino).length
  t.equal(copies, 0, `no copies of a file that had ${names} names`)
})

// The sandbox's user is the worker's own outside: a run may chmod what its start-up made in its
// cache, and the cache's own folder, to 000. A worker that is not root then could not open them:
// the freeze at go threw (the run ended as "aborted", never reported), and, kept as the source's
// cache, the next run of the same source threw before it started, every time ("failed inside the
// worker", left for its lease to expire); a file of mode 000 in a baseline's cache made the baseline
// throw after it ran, when its cache joined the trusted layer. Run as an ordinary user (uid 65534
// where the tests are root).
t.test('folders a run made unreadable in its cache stop neither the freeze at go nor the next run of the source', async t => {
  const asRoot = process.getuid?.() === 0
  if (asRoot && !existsSync('/usr/bin/setpriv')) {
    t.comment('skipped: needs setpriv to act as an ordinary user')
    return
  }
  const dir = t.testdir()
  if (asRoot) execFileSync('chown', ['-R', '65534:65534', dir])
  const module = fileURLToPath(new URL('../../src/runner/compile-cache.ts', import.meta.url))
  const script = `import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
const { cacheForRun, cacheForSource, promoteToTrusted } = await import(${JSON.stringify(module)})
const dir = process.env.CACHE_DIR
const source = await cacheForSource(dir, 'abc')
for (const lock of ['folder', 'root']) {
  const run = await cacheForRun(dir, 'abc')
  mkdirSync(join(run.dir, 'inductor', 'locked', 'sub'), { recursive: true })
  writeFileSync(join(run.dir, 'inductor', 'compiled.py'), 'compiled before go')
  chmodSync(join(run.dir, 'inductor', 'locked'), 0)
  if (lock === 'root') chmodSync(run.dir, 0)
  await run.atGo()
  await run.close()
  console.log(lock, 'frozen and closed; kept the rest:', existsSync(join(source, 'inductor', 'compiled.py')))
}
const next = await cacheForRun(dir, 'abc')
mkdirSync(join(next.dir, 'inductor'), { recursive: true })
writeFileSync(join(next.dir, 'inductor', 'sealed.py'), 'x')
chmodSync(join(next.dir, 'inductor', 'sealed.py'), 0)
await next.atGo()
await next.close()
console.log('the next run of the source started')
await promoteToTrusted(dir, 'abc')
console.log('promoted')`
  const argv = [process.execPath, '--import=tsx', '--input-type=module', '-e', script]
  const r = spawnSync(asRoot ? 'setpriv' : argv[0], asRoot ? ['--reuid=65534', '--regid=65534', '--clear-groups', ...argv] : argv.slice(1), {
    env: { ...process.env, CACHE_DIR: dir }, encoding: 'utf8',
  })
  const error = r.stderr.trim().split('\n').filter(l => /Error/.test(l)).slice(0, 2).join(' ')
  t.match(r.stdout, /folder frozen and closed; kept the rest: true/, `a folder of mode 000: ${error}`)
  t.match(r.stdout, /root frozen and closed/, `the cache's own folder of mode 000: ${error}`)
  t.match(r.stdout, /the next run of the source started/, `the next run: ${error}`)
  t.match(r.stdout, /promoted/, `a baseline's cache holding a file of mode 000 joins the trusted layer without it: ${error}`)
  if (asRoot) execFileSync('chmod', ['-R', 'u+rwx', dir])
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

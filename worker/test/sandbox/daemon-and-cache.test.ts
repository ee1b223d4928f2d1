import t from 'tap'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { findPython } from '@autoresearch-grid/trainer'
import { sharedCorpus } from '../fixtures/corpus.ts'
import { detectSandbox } from '../../src/sandbox/detect.ts'
import type { HostLayout } from '../../src/sandbox/bwrap.ts'
import { trainAndMeasure } from '../../src/runner/measure.ts'
import { prepareRunDir } from '../../src/runner/run-dir.ts'
import { removeTree } from '../../src/runner/remove-tree.ts'
import { tagged } from '../fixtures/hostile/world.ts'
import { sourceHashOf } from '../fixtures/hostile/harness.ts'
import { sleep, until } from '../../../shared/test/support/until.ts'

// Two attacks that play out after train.py has returned: a daemon that outlives the run and acts
// later, and a compile-cache entry planted for the next run of other code. Both through the real
// runner; the control (no sandbox) shows each one works.
const trainerDir = fileURLToPath(new URL('../../../trainer/', import.meta.url))
const python = await findPython().catch(() => null)

const DAEMONS: Record<string, string> = {
  'double fork + setsid': `
pid = os.fork()
if pid == 0:
    os.setsid()
    if os.fork() == 0:
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.execvp("sh", ["sh", "-c", SCRIPT, TAG, *TARGETS])
    os._exit(0)
os.waitpid(pid, 0)`,
  'subprocess.Popen(start_new_session=True)': `
import subprocess
subprocess.Popen(["sh", "-c", SCRIPT, TAG, *TARGETS], start_new_session=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, close_fds=True)`,
  'ctypes daemon(3) then exec': `
import ctypes
if os.fork() == 0:
    ctypes.CDLL(None).daemon(1, 0)
    os.execvp("sh", ["sh", "-c", SCRIPT, TAG, *TARGETS])
time.sleep(0.2)`,
}

t.test('daemons and planted caches', { skip: python ? false : 'needs a Python with torch' }, async t => {
  if (!python) return
  const found = await detectSandbox(python.path)
  if (!found.ok) return t.fail(`no sandbox here: ${found.problem}`)
  const data = await sharedCorpus()
  const run = async (dir: string, source: string, sandbox: HostLayout | null, cacheDir = join(dir, 'cache')) => {
    const runDir = join(dir, 'run')
    await prepareRunDir({ runDir, files: { 'train.py': source }, trainerDir })
    return trainAndMeasure({
      python: python.path, trainerDir, runDir, budgetSeconds: 5, profile: 'cpu-tiny', cacheDir, dataDir: data.dataDir,
      sandbox, sourceHash: sourceHashOf(source),
    })
  }

  for (const [how, spawn] of Object.entries(DAEMONS)) {
    t.test(`a trainer's daemon (${how}) does not survive the run`, async t => {
      const leftovers: number[] = []
      t.teardown(() => { for (const pid of leftovers) try { process.kill(pid, 'SIGKILL') } catch { /* gone */ } })
      for (const sandboxed of [true, false]) {
        const dir = join(t.testdir(), sandboxed ? 'sandboxed' : 'control')
        mkdirSync(dir, { recursive: true })
        const tag = `arg-daemon-${randomBytes(6).toString('hex')}`
        const hostMarker = join(dir, 'DAEMON-WAS-HERE')
        const source = `import os, sys, time
TAG = ${JSON.stringify(tag)}
# after 2 s: a file on the host (as the worker's user) and one in the run folder
TARGETS = [${JSON.stringify(hostMarker)}, "DAEMON-IN-RUN"]
SCRIPT = 'sleep 2; for p in "$@"; do echo alive > "$p"; done; sleep 30'
${spawn}
print("daemon started", flush=True)
sys.exit(0)
`
        const m = await run(dir, source, sandboxed ? found.host : null)
        t.match(m.logTail, /daemon started/, `${sandboxed ? 'sandboxed' : 'control'}: train.py started its daemon`)
        if (sandboxed) {
          t.ok(await until('the daemon to be gone', () => tagged(tag).length === 0), 'sandboxed: no process of the daemon is alive once the run is over')
          await sleep(4000) // past the moment the daemon would have written
          t.notOk(existsSync(hostMarker), 'sandboxed: the daemon wrote nothing on the host')
          t.notOk(existsSync(join(dir, 'run', 'DAEMON-IN-RUN')), 'sandboxed: nor into the run folder after the run')
          t.same(tagged(tag), [], 'sandboxed: still nothing alive')
        } else {
          t.ok(await until('the daemon to write', () => existsSync(hostMarker) && existsSync(join(dir, 'run', 'DAEMON-IN-RUN'))), 'control: without the sandbox the daemon outlives the run and writes later')
          const alive = tagged(tag)
          leftovers.push(...alive)
          t.ok(alive.length > 0, `control: it is still running (${alive.length} processes)`)
        }
      }
    })
  }

  t.test('what a run learned from its data does not reach the next run of the same source through its compile cache', async t => {
    // The cache of a source is writable and kept for its next run (a verification, a repeated
    // baseline): a run could stash what it learned after go (weights) and pick it up in the next
    // run's untimed start-up, training on past the budget. Three ways: a new file, a start-up file
    // written over in place, a start-up folder renamed to carry the bits.
    const source = `import os, sys, time
d = os.environ.get("TORCHINDUCTOR_CACHE_DIR") or os.path.join(os.environ["AUTORESEARCH_CACHE"], "compile", "inductor")
os.makedirs(d, exist_ok=True)
stash, pre, kept = (os.path.join(d, n) for n in ("stash.txt", "pre-go.txt", "compiled.txt"))
seen = [open(p).read() for p in (stash, pre, kept) if os.path.exists(p)] + sorted(os.listdir(d))
print("start-up sees:", " | ".join(seen), flush=True)
open(pre, "w").write("written before go".ljust(40))
open(kept, "w").write("compiled before go")
os.makedirs(os.path.join(d, "dir-before-go"), exist_ok=True)
folder = os.environ["AUTORESEARCH_DATA"]
print("autoresearch: ready for the training data", flush=True)
while not os.path.exists(os.path.join(folder, "train.bin")):
    time.sleep(0.01)
learned = open(os.path.join(folder, "train.bin"), "rb").read(8).hex()
open(stash, "w").write("LEARNED " + learned)
with open(pre, "r+") as f:
    f.write("LEARNED " + learned)
os.rename(os.path.join(d, "dir-before-go"), os.path.join(d, "LEARNED-" + learned))
print("stashed", learned, flush=True)
sys.exit(0)
`
    for (const sandboxed of [true, false]) {
      const dir = join(t.testdir(), sandboxed ? 'sandboxed' : 'control')
      mkdirSync(join(dir, 'cache', 'compile'), { recursive: true })
      const box = sandboxed ? found.host : null
      const first = await run(dir, source, box)
      t.match(first.logTail, /^stashed [0-9a-f]+$/m, `${sandboxed ? 'sandboxed' : 'control'}: the first run had its data and stashed from it`)
      const second = await run(dir, source, box)
      const seen = /^start-up sees:.*$/m.exec(second.logTail)?.[0] ?? ''
      if (sandboxed) {
        t.notMatch(seen, /LEARNED/, `sandboxed: the next run's start-up finds nothing written after go (${seen})`)
        t.match(seen, /compiled before go/, 'sandboxed: what start-up wrote and left alone (the compile cache proper) is kept')
      } else {
        t.match(seen, /LEARNED/, 'control: unsandboxed, the next run starts with what the first learned')
      }
    }
  })

  t.test('a compile cache deeper than a path can name is still evicted, and the worker goes on', async t => {
    // Node's rm names each entry by its full path: a tree past PATH_MAX, made one chdir at a time,
    // made the eviction of old sources throw, and with it every run of a new source.
    const dir = t.testdir()
    t.teardown(() => removeTree(dir))
    mkdirSync(join(dir, 'cache', 'compile'), { recursive: true })
    const deep = await run(dir, `import os
d = os.environ["TORCHINDUCTOR_CACHE_DIR"]
os.makedirs(d, exist_ok=True)
os.chdir(d)
for _ in range(24):
    os.mkdir("d" * 200)
    os.chdir("d" * 200)
open("deep", "w").write("x")
print("deep tree left", flush=True)
`, found.host)
    t.match(deep.logTail, /deep tree left/)
    for (let i = 0; i < 9; i++) {
      const m = await run(dir, `print("source ${i}")\n`, found.host) // 9 new sources: the deep one is the oldest of 10, evicted
      t.match(m.logTail, new RegExp(`source ${i}`), `run ${i} of a new source ran`)
    }
    const left = readdirSync(join(dir, 'cache', 'compile', 'by-source'))
    t.equal(left.length, 8, `the eight most recent sources are kept: ${left.join(', ')}`)
  })

  t.test('a planted compile-cache entry is never seen by a run of other code', async t => {
    const plant = (tag: string) => `import os, sys
d = os.environ.get("TORCHINDUCTOR_CACHE_DIR") or os.path.join(os.environ["AUTORESEARCH_CACHE"], "compile", "inductor")
p = os.path.join(d, "fxgraph", "planted.py")
print("cache sees planted:", os.path.exists(p), flush=True)
if ${JSON.stringify(tag)} == "attacker":
    os.makedirs(os.path.dirname(p), exist_ok=True)
    open(p, "w").write("import os; os.system('touch /tmp/pwned')  # runs when the cache entry is loaded")
    print("planted", p, flush=True)
sys.exit(0)
`
    const attacker = plant('attacker')
    const honest = plant('honest')
    for (const sandboxed of [true, false]) {
      const dir = join(t.testdir(), sandboxed ? 'sandboxed' : 'control')
      mkdirSync(join(dir, 'cache', 'compile', 'trusted', 'inductor'), { recursive: true })
      const box = sandboxed ? found.host : null
      const a = await run(dir, attacker, box)
      t.match(a.logTail, /^planted /m, `${sandboxed ? 'sandboxed' : 'control'}: the attacker writes its cache (allowed: it is its own)`)
      const b = await run(dir, honest, box)
      if (sandboxed) {
        t.match(b.logTail, /cache sees planted: False/, 'sandboxed: a run of different code does not see the planted entry')
        t.notOk(existsSync(join(dir, 'cache', 'compile', 'trusted', 'inductor', 'fxgraph', 'planted.py')), 'sandboxed: the trusted layer is untouched')
        const again = await run(dir, attacker, box)
        t.match(again.logTail, /cache sees planted: True/, 'sandboxed: a repeat of the same source reuses its own cache')
      } else {
        t.match(b.logTail, /cache sees planted: True/, 'control: with the shared unsandboxed cache the honest run sees it')
      }
    }
  })
})


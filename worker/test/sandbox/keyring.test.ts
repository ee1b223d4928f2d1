import t from 'tap'
import { randomBytes } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { execa } from 'execa'
import { findPython } from '@autoresearch-grid/trainer'
import { sharedCorpus } from '../fixtures/corpus.ts'
import { detectSandbox } from '../../src/sandbox/detect.ts'

// A volunteer who starts the worker from a login session has a kernel session keyring (pam_keyinit):
// Kerberos tickets (KEYRING: caches), ecryptfs and other credentials live there. A process inherits
// its parent's session keyring and possesses its keys, so train.py must start in a keyring of its
// own. The worker here runs in a fresh session keyring holding a secret key; the payload searches
// its session keyring for it. The control (a plain child of the worker, not started by the runner)
// finds it; through the runner, with or without the sandbox, it does not.
const trainerDir = fileURLToPath(new URL('../../../trainer/', import.meta.url))
const fixture = fileURLToPath(new URL('../fixtures/hostile/measure-process.ts', import.meta.url))
const python = await findPython().catch(() => null)

/** Joins a new session keyring, adds the secret to it, then execs the worker. */
const IN_KEYRING = `
import ctypes, os, platform, sys
libc = ctypes.CDLL(None, use_errno=True)
ADD_KEY, KEYCTL = {"x86_64": (248, 250), "aarch64": (217, 219)}[platform.machine()]
if libc.syscall(KEYCTL, 1, b"arg-test-session") < 0:  # KEYCTL_JOIN_SESSION_KEYRING
    sys.exit("keyctl join: " + os.strerror(ctypes.get_errno()))
secret = os.environ.pop("ARG_KEY_SECRET").encode()
if libc.syscall(ADD_KEY, b"user", b"arg-test-key", secret, len(secret), -3) < 0:  # add_key to @s
    sys.exit("add_key: " + os.strerror(ctypes.get_errno()))
os.execvp(sys.argv[1], sys.argv[1:])
`

const PAYLOAD = `
import ctypes, os, platform, sys
libc = ctypes.CDLL(None, use_errno=True)
KEYCTL = {"x86_64": 250, "aarch64": 219}[platform.machine()]
key = libc.syscall(KEYCTL, 10, -3, b"user", b"arg-test-key", 0)  # KEYCTL_SEARCH in @s
if key < 0:
    print("no key:", os.strerror(ctypes.get_errno()))
else:
    buf = ctypes.create_string_buffer(256)
    n = libc.syscall(KEYCTL, 11, key, buf, 256)  # KEYCTL_READ
    print("stolen from the session keyring:", buf.raw[:max(n, 0)].decode(errors="replace"))
sys.exit(0)
`

t.test('train.py cannot read the worker\'s session keyring (the launcher gives it a new, empty one)', { skip: python ? false : 'needs a Python with torch' }, async t => {
  if (!python) return
  const found = await detectSandbox(python.path)
  if (!found.ok) return t.fail(`no sandbox here: ${found.problem}`)
  const data = await sharedCorpus()
  const dir = t.testdir()
  const trainFile = join(dir, 'train.py')
  writeFileSync(trainFile, PAYLOAD)
  const controlSecret = `keyring-${randomBytes(10).toString('hex')}`
  const control = await execa(python.path, ['-c', IN_KEYRING, python.path, trainFile], { reject: false, all: true, env: { ARG_KEY_SECRET: controlSecret } })
  if (/keyctl join:|add_key:/.test(String(control.all))) {
    t.pass(`no session keyrings on this machine (${String(control.all).trim().split('\n').pop()}): nothing to leak`)
    return
  }
  t.match(String(control.stdout), controlSecret, 'control: a plain child of the worker reads the key from its session keyring')
  for (const sandboxed of [false, true]) {
    const secret = `keyring-${randomBytes(10).toString('hex')}`
    const r = await execa(python.path, ['-c', IN_KEYRING, process.execPath, '--import', 'tsx', fixture, join(dir, `run-${sandboxed}`), trainerDir, data.dataDir, join(dir, 'cache'), sandboxed ? '1' : '0', trainFile], {
      reject: false, all: true, env: { ARG_KEY_SECRET: secret, AUTORESEARCH_PYTHON: python.path, NODE_OPTIONS: '' },
    })
    if (/keyctl join:|add_key:/.test(String(r.all))) {
      t.pass(`no session keyrings on this machine (${String(r.all).trim().split('\n').pop()}): nothing to leak`)
      return
    }
    const last = String(r.stdout).trim().split('\n').pop() ?? ''
    const m = last.startsWith('{') ? JSON.parse(last) as { logTail: string } : null
    if (!m) {
      t.fail(`the worker process failed: ${String(r.all).slice(-800)}`)
      continue
    }
    t.notMatch(m.logTail, secret, `${sandboxed ? 'sandboxed' : 'unsandboxed'}: the key in the worker's session keyring is out of reach of train.py`)
  }
})

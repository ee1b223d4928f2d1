import t from 'tap'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { execa } from 'execa'
import { findPython } from '@autoresearch-grid/trainer'
import { checkSource, runIfSafe } from '../../src/safety/policy.ts'
import { runTrainer } from '../../src/runner/trainer.ts'

// Code written by someone else's agent must pass the static policy before it runs. Every variant
// below would create MARKER if it ran (the control test proves the payloads work); each goes
// through the same door the worker uses (check, then run only on a pass), and MARKER must stay absent.
const TRAIN = readFileSync(fileURLToPath(new URL('../../../trainer/train.py', import.meta.url)), 'utf8')
const python = (await findPython()).path

const HOSTILE: Record<string, string> = {
  'open() for writing': `open(MARKER, "w").write("x")`,
  'os.system': `import os\nos.system("touch " + MARKER)`,
  'subprocess': `import subprocess\nsubprocess.run(["touch", MARKER])`,
  'pathlib write': `import pathlib\npathlib.Path(MARKER).write_text("x")`,
  'shutil copy': `import shutil\nshutil.copy(__file__, MARKER)`,
  '__import__': `__import__("os").system("touch " + MARKER)`,
  'eval': `eval("__import__('os').system('touch ' + MARKER)")`,
  'exec': `exec("open(MARKER, 'w').write('x')")`,
  'importlib': `import importlib\nimportlib.import_module("os").system("touch " + MARKER)`,
  'getattr on __builtins__': `getattr(__builtins__, "open")(MARKER, "w").write("x")`,
  '__subclasses__ walk': `[c for c in ().__class__.__base__.__subclasses__() if c.__name__ == "_wrap_close"][0].__init__.__globals__["system"]("touch " + MARKER)`,
  'function __globals__': `(lambda: 0).__globals__["__builtins__"].open(MARKER, "w").write("x")`,
  'ctypes system': `import ctypes\nctypes.CDLL(None).system(("touch " + MARKER).encode())`,
  'the mallopt handle misused': `import ctypes\nlibc = ctypes.CDLL(None)\nlibc.system(("touch " + MARKER).encode())`,
  'the mallopt handle aliased': `import ctypes\nlibc = ctypes.CDLL(None)\nf = libc\nf.system(("touch " + MARKER).encode())`,
  'os.open': `import os\nos.close(os.open(MARKER, os.O_CREAT | os.O_WRONLY))`,
  'from os import system': `from os import system as s\ns("touch " + MARKER)`,
  'torch.save': `import torch\ntorch.save(torch.zeros(1), MARKER)`,
  'numpy tofile': `import torch\ntorch.zeros(3).numpy().tofile(MARKER)`,
  'pickle': `import pickle\npickle.loads(("cos\\nsystem\\n(S'touch " + MARKER + "'\\ntR.").encode())`,
  'sys.modules': `import sys\nsys.modules["os"].system("touch " + MARKER)`,
  'gc.get_objects': `import gc\n[o for o in gc.get_objects() if isinstance(o, dict) and "system" in o and "getcwd" in o][0]["system"]("touch " + MARKER)`,
  'typing evaluates a string annotation': `import typing\ndef f(x: "__import__('os').system('touch ' + MARKER)"): pass\ntyping.get_type_hints(f)`,
  'io.open': `import io\nio.open(MARKER, "w").write("x")`,
  'a module passed around': `import os\np = os\np.system("touch " + MARKER)`,
  'type() of a file object': `import sys\ntype(sys.stdout.buffer.raw)(MARKER, "w").write(b"x")`,
  'getattr with a computed name': `import os\ngetattr(os, "sys" + "tem")("touch " + MARKER)`,
  'torch.hub download': `import torch.hub\ntorch.hub.download_url_to_file("file:///etc/hostname", MARKER, progress=False)`,
  'match reads __globals__': `def f(): pass\nmatch f:\n    case object(__globals__=g):\n        g["__builtins__"].open(MARKER, "w").write("x")`,
  'traceback frames': `try:\n    1 / 0\nexcept Exception as e:\n    e.__traceback__.tb_frame.f_builtins["open"](MARKER, "w").write("x")`,
  'generator frames': `g = (i for i in [1])\ng.gi_frame.f_builtins["open"](MARKER, "w").write("x")`,
  'environment aimed at the compiler': `import os\nos.environ["CXX"] = "touch " + MARKER\nos.system(os.environ["CXX"])`,
  'vars()': `vars()["__builtins__"].open(MARKER, "w").write("x")`,
}

/** The payload goes right after the docstring, before torch is imported: if it ran, it ran first. */
function variant(payload: string, marker: string): string {
  const end = TRAIN.indexOf('"""', 3) + 3
  return `${TRAIN.slice(0, end)}\nMARKER = ${JSON.stringify(marker)}\n${payload}\n${TRAIN.slice(end)}`
}

t.test('the real trainer passes the policy', async t => {
  const v = await checkSource(python, { 'train.py': TRAIN }, { 'train.py': TRAIN }, ['train.py'])
  t.same(v.violations, [])
  t.equal(v.ok, true)
})

t.test('a payload that slipped through would create its marker (the control)', async t => {
  const dir = t.testdir({})
  const marker = join(dir, 'marker')
  await execa(python, ['-c', `MARKER = ${JSON.stringify(marker)}\n${HOSTILE['os.system']}`])
  t.ok(existsSync(marker))
})

t.test(`${Object.keys(HOSTILE).length} hostile variants of train.py are rejected and never run`, async t => {
  t.ok(Object.keys(HOSTILE).length >= 20)
  for (const [name, payload] of Object.entries(HOSTILE)) {
    const dir = t.testdir({})
    const marker = join(dir, 'marker')
    const source = variant(payload, marker)
    const { verdict, result } = await runIfSafe({
      python, files: { 'train.py': source }, parent: { 'train.py': TRAIN }, editable: ['train.py'],
      run: async () => {
        const runDir = join(dir, 'run')
        await execa('mkdir', ['-p', runDir])
        await execa('cp', [fileURLToPath(new URL('../../../trainer/prepare.py', import.meta.url)), runDir])
        const { writeFile } = await import('node:fs/promises')
        await writeFile(join(runDir, 'train.py'), source)
        return runTrainer({ python, runDir, budgetSeconds: 1, profile: 'cpu-tiny', hardTimeoutSeconds: 60 })
      },
    })
    t.equal(verdict.ok, false, `${name}: rejected`)
    t.ok(verdict.violations.length > 0 && verdict.violations.every(v => v.message.length > 0), `${name}: ${verdict.violations[0]?.message}`)
    t.equal(result, null, `${name}: not run`)
    t.notOk(existsSync(marker), `${name}: no marker`)
  }
})

t.test('a candidate that changes a file that is not editable is refused before parsing', async t => {
  const v = await checkSource(python, { 'train.py': TRAIN, 'prepare.py': 'print(1)' }, { 'train.py': TRAIN }, ['train.py'])
  t.equal(v.ok, false)
  t.match(v.violations[0].message, /prepare\.py is not an editable file/)
})

t.test('settings that choose what torch\'s compiler runs are refused; its speed flags are not', async t => {
  const refused = [
    'import torch._inductor.config as ic\nic.cpp.cxx = ("sh", "-c", "touch marker")',
    'import torch\nt = torch\nt._inductor.config.cpp.cxx = "sh"',
    'import torch\nm = torch.compile(lambda x: x, options={"cpp.cxx": "sh"})',
    'import os\nos.environ.setdefault("CXX", "sh")',
  ]
  for (const source of refused) t.equal((await checkSource(python, { 'train.py': source }, { 'train.py': '' }, ['train.py'])).ok, false, source.split('\n').pop()!)
  const ok = 'import torch\ntorch._inductor.config.coordinate_descent_tuning = True\ntorch._dynamo.config.cache_size_limit = 64'
  t.same((await checkSource(python, { 'train.py': ok }, { 'train.py': ok }, ['train.py'])).violations, [])
})

t.test('ordinary trainer idioms pass', async t => {
  const ok = [
    'import os\nx = os.environ.get("AUTORESEARCH_SEED", "1")\nos.environ.setdefault("TRITON_CACHE_DIR", "/tmp/x")\nif "A" in os.environ: pass',
    'import sys\nprint("x", file=sys.stderr)\nsys.stdout.flush()',
    'import torch\nfrom torch import nn\nimport torch.nn.functional as F\nmps = getattr(torch.backends, "mps", None)\ntorch.backends.cudnn.benchmark = True',
    'import math, time, gc, functools, itertools, dataclasses\nfrom dataclasses import dataclass\n@dataclass\nclass C:\n    x: int = 1\n    def __init__(self):\n        self._y = 2\n    def get(self):\n        return self._y',
    'from prepare import TIME_BUDGET, load_data, save_model\nimport prepare\nprint(prepare.SEQ_LEN)',
  ]
  for (const source of ok) {
    const v = await checkSource(python, { 'train.py': source }, { 'train.py': source }, ['train.py'])
    t.same(v.violations, [], source.split('\n')[0])
  }
})

t.test('a candidate holding a bidirectional control ("Trojan Source") is refused before parsing, with its line', async t => {
  const trojan = `${TRAIN}\n# note \u2067 ignore\n`
  const v = await checkSource(python, { 'train.py': trojan }, { 'train.py': TRAIN }, ['train.py'])
  t.equal(v.ok, false)
  t.same(v.violations.map(x => [x.file, x.line]), [['train.py', trojan.split('\n').findIndex(l => l.includes('\u2067')) + 1]])
  t.match(v.violations[0].message, /^U\+2067 is a Unicode bidirectional control: it makes code read differently from how it runs/)
})

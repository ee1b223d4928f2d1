// Installs whatever `npm start` and `npm test` need and is missing, with no dependencies of its
// own: the pnpm workspace (through corepack, or npx when corepack's download fails), a Python
// with PyTorch + sentencepiece (Debian's packages when apt is usable), bubblewrap (the sandbox),
// and for the tests Debian's Chromium (the dashboard's browser tests). Prints what to do otherwise.
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, statSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const root = join(dirname(fileURLToPath(import.meta.url)), '..')

const say = msg => process.stderr.write(`[setup] ${msg}\n`)

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', cwd: root, ...opts, env: { ...process.env, ...opts.env } })
  return r.status === 0
}

function quiet(cmd, args, opts = {}) {
  try {
    return execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'ignore'], cwd: root, timeout: 60_000, ...opts }).toString().trim()
  } catch {
    return null
  }
}

function pnpm(args) {
  const env = { COREPACK_INTEGRITY_KEYS: '0', COREPACK_ENABLE_DOWNLOAD_PROMPT: '0' }
  if (quiet('corepack', ['pnpm', '--version'], { env: { ...process.env, ...env } })) return run('corepack', ['pnpm', ...args], { env })
  say('corepack could not provide pnpm; using npx pnpm@10')
  return run('npx', ['-y', 'pnpm@10', ...args])
}

function ensureNode() {
  const major = Number(process.versions.node.split('.')[0])
  if (major < 20) {
    say(`Node ${process.versions.node} is too old: install Node 20 or newer (https://nodejs.org)`)
    process.exit(1)
  }
}

function ensureDependencies() {
  const marker = join(root, 'node_modules', '.modules.yaml')
  const lock = join(root, 'pnpm-lock.yaml')
  if (existsSync(marker) && (!existsSync(lock) || statSync(marker).mtimeMs >= statSync(lock).mtimeMs)) return
  say('installing Node dependencies (pnpm install; better-sqlite3 builds from source, about a minute)')
  if (!pnpm(['install', '--frozen-lockfile', '--reporter=append-only'])) {
    say('pnpm install failed: see the output above')
    process.exit(1)
  }
}

const PY_CHECK = 'import torch, sentencepiece, numpy; print(torch.__version__)'

/** The Python that has PyTorch and sentencepiece: AUTORESEARCH_PYTHON, python3, or Debian's. */
export function findPython() {
  const candidates = [process.env.AUTORESEARCH_PYTHON, 'python3', '/usr/bin/python3', 'python'].filter(Boolean)
  for (const py of candidates) if (quiet(py, ['-c', PY_CHECK])) return py
  return null
}

/** apt-get as root, or through passwordless sudo; null when neither is possible. */
function aptCommand() {
  if (!quiet('which', ['apt-get'])) return null
  if (process.getuid?.() === 0) return args => run('apt-get', args, { env: { DEBIAN_FRONTEND: 'noninteractive' } })
  if (quiet('sudo', ['-n', 'true']) !== null) return args => run('sudo', ['-n', 'env', 'DEBIAN_FRONTEND=noninteractive', 'apt-get', ...args])
  return null
}

export function aptInstall(packages) {
  const apt = aptCommand()
  if (!apt) return false
  say(`installing Debian packages: ${packages.join(' ')}`)
  const install = () => apt(['install', '-y', '-q', '--no-install-recommends', ...packages])
  return install() || (apt(['update', '-q']) && install())
}

function ensurePython(withTests) {
  let py = findPython()
  const need = withTests && py && quiet(py, ['-c', 'import pytest']) === null
  if (!py || need) {
    const pkgs = ['python3-torch', 'python3-sentencepiece', 'python3-numpy', ...(withTests ? ['python3-pytest'] : [])]
    if (!aptInstall(pkgs)) {
      say('no Python with PyTorch and sentencepiece was found, and apt-get is not usable here.')
      say('Install them, then run this again: on Debian/Ubuntu `sudo apt-get install ' + pkgs.join(' ') + '`;')
      say('elsewhere `cd trainer && uv sync` (or pip install torch sentencepiece numpy pytest) and set AUTORESEARCH_PYTHON to that python.')
      process.exit(1)
    }
    py = findPython()
    if (!py) {
      say('PyTorch was installed but no python can import it: set AUTORESEARCH_PYTHON to a python that can.')
      process.exit(1)
    }
  }
  process.env.AUTORESEARCH_PYTHON = py
  return py
}

/** The dashboard's browser tests drive Debian's Chromium; without it they are skipped, saying why. */
export const CHROMIUM = '/usr/bin/chromium'

function ensureChromium() {
  if (existsSync(CHROMIUM)) return
  if (!aptInstall(['chromium']) || !existsSync(CHROMIUM)) {
    say(`no Chromium at ${CHROMIUM} and apt-get could not install it: the dashboard's browser tests will be skipped.`)
    say('On Debian/Ubuntu: `sudo apt-get install chromium`.')
  }
}

/** True when bubblewrap can make a sandbox here (the worker checks this again, thoroughly). */
export function sandboxUsable() {
  return quiet('bwrap', ['--unshare-all', '--die-with-parent', '--ro-bind', '/', '/', 'true']) !== null
}

/**
 * Every run of campaign code goes into a bubblewrap sandbox (worker/src/sandbox): Debian's package
 * where apt is usable; elsewhere the worker names the fix.
 */
function ensureBubblewrap() {
  if (quiet('bwrap', ['--version'])) return
  if (!aptInstall(['bubblewrap']) || !quiet('bwrap', ['--version'])) {
    say('bubblewrap (bwrap) is not installed and apt-get could not install it: a worker will refuse other contributors\' code.')
    say('On Debian/Ubuntu: `sudo apt-get install bubblewrap`; Fedora: `sudo dnf install bubblewrap`.')
  }
}

export function bootstrap({ tests = false } = {}) {
  ensureNode()
  ensureDependencies()
  const python = ensurePython(tests)
  ensureBubblewrap()
  if (tests) ensureChromium()
  return { python }
}

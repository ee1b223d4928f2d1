// Ruff for the Python files, through Ruff's WebAssembly build (@astral-sh/ruff-wasm-nodejs): Debian
// packages no ruff and the project installs no pip packages. Settings come from ruff.toml.
//   node scripts/ruff.mjs                 lint; exits 1 with `file:line:col CODE message` per finding
//   node scripts/ruff.mjs --check-format  lint, and list the files `--format` would change
//   node scripts/ruff.mjs --format        format the files in place
// Files given after the flags replace the default set (PYTHON_ROOTS below).
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { PositionEncoding, Workspace } from '@astral-sh/ruff-wasm-nodejs'
import { root } from './bootstrap.mjs'

/** Where the Python lives; trainer/js is the trainer's TypeScript side. */
const PYTHON_ROOTS = ['trainer', 'worker/safety']
const SKIP = new Set(['node_modules', '__pycache__', 'js', '.pytest_cache'])

/** ruff.toml as Ruff's settings object: the TOML subset the file keeps to (see its header). */
export function readSettings(text) {
  const settings = {}
  let table = settings
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\s+#[^"]*$|^#.*$/, '').trim()
    if (!line) continue
    const header = /^\[([\w.-]+)\]$/.exec(line)
    if (header) {
      table = header[1].split('.').reduce((t, k) => (t[k] ??= {}), settings)
      continue
    }
    const kv = /^([\w-]+)\s*=\s*(.+)$/.exec(line)
    if (!kv) throw new Error(`ruff.toml: cannot read "${raw}" (keep to [table] and key = <JSON value> lines)`)
    table[kv[1]] = JSON.parse(kv[2])
  }
  return settings
}

function pythonFiles(dir) {
  const out = []
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (SKIP.has(e.name)) continue
    const path = join(dir, e.name)
    if (e.isDirectory()) out.push(...pythonFiles(path))
    else if (e.name.endsWith('.py')) out.push(path)
  }
  return out
}

function main(argv) {
  const flags = new Set(argv.filter(a => a.startsWith('--')))
  const given = argv.filter(a => !a.startsWith('--'))
  const files = given.length ? given.map(f => join(process.cwd(), f)) : PYTHON_ROOTS.flatMap(r => pythonFiles(join(root, r))).sort()
  const ruff = new Workspace(readSettings(readFileSync(join(root, 'ruff.toml'), 'utf8')), PositionEncoding.Utf16)
  let findings = 0
  let changed = 0
  for (const file of files) {
    const name = relative(root, file)
    const text = readFileSync(file, 'utf8')
    if (flags.has('--format')) {
      const formatted = ruff.format(text)
      if (formatted === text) continue
      writeFileSync(file, formatted)
      changed++
      continue
    }
    for (const d of ruff.check(text)) {
      findings++
      console.log(`${name}:${d.start_location.row}:${d.start_location.column} ${d.code ?? 'syntax'} ${d.message}`)
    }
    if (flags.has('--check-format') && ruff.format(text) !== text) {
      findings++
      console.log(`${name}: not formatted (npm run format)`)
    }
  }
  if (flags.has('--format')) console.log(`ruff: formatted ${changed} of ${files.length} Python files`)
  else console.log(`ruff: ${findings || 'no'} finding${findings === 1 ? '' : 's'} in ${files.length} Python files`)
  return findings === 0 ? 0 : 1
}

process.exitCode = main(process.argv.slice(2))

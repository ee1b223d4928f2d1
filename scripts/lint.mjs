// `npm run lint` and `npm run format`: Biome for the TypeScript and JavaScript (biome.jsonc), Ruff
// for the Python (scripts/ruff.mjs, ruff.toml). Both run even when the first finds something, so
// one run shows every finding; the exit status is 1 if either did.
//   node scripts/lint.mjs                 lint rules only (what `npm test` checks for now)
//   node scripts/lint.mjs --check-format  lint rules, and files the formatters would change
//   node scripts/lint.mjs --format        rewrite every file in the formatters' style
// `--check-format` waits for one `npm run format` over the whole tree: until then most files would
// fail it, and reformatting them while other branches are open would conflict with all of them.
import { spawnSync } from 'node:child_process'
import { root } from './bootstrap.mjs'

const BIOME = {
  lint: ['lint', '--error-on-warnings', '--max-diagnostics=none', '.'],
  'check-format': ['check', '--error-on-warnings', '--max-diagnostics=none', '.'],
  format: ['format', '--write', '.'],
}
const RUFF = { lint: [], 'check-format': ['--check-format'], format: ['--format'] }

const mode = process.argv.includes('--format') ? 'format' : process.argv.includes('--check-format') ? 'check-format' : 'lint'
const run = (cmd, args) => spawnSync(cmd, args, { cwd: root, stdio: 'inherit' }).status
const biome = run('npx', ['biome', ...BIOME[mode]])
const ruff = run(process.execPath, ['scripts/ruff.mjs', ...RUFF[mode]])
process.exitCode = biome === 0 && ruff === 0 ? 0 : 1

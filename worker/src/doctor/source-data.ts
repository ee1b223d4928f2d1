import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { execa } from 'execa'
import { describePrepared, type FoundPython } from '@autoresearch-grid/trainer'
import type { DataSource, Profile } from '@autoresearch-grid/shared'
import { fetchManifest } from '../data/served.ts'
import type { Check } from './check.ts'

/**
 * `worker doctor` for campaign data that is not prepared from the embedded corpus: a data set the
 * coordinator serves (is this machine's copy there and does it match?) and climbmix (can this
 * Python read parquet at all?). Null when the generic prepare.py check applies.
 */
export async function checkSourceData(o: { stateDir: string; trainerDir: string; httpBase: string; token?: string }, python: FoundPython,
  c: { name: string; spec: { profile: Profile; fingerprint: string | null; data?: DataSource } }): Promise<Check | null> {
  const name = `data for ${c.name}`
  const source = c.spec.data ?? { kind: 'embedded' }
  if (source.kind === 'climbmix') {
    const r = await execa(python.path, ['-c', 'import pyarrow'], { reject: false, stdin: 'ignore', timeout: 60_000 })
    if (r.exitCode !== 0) return { name, level: 'fail', detail: `climbmix needs pyarrow, which ${python.path} cannot import`, fix: 'pip install pyarrow (or cd trainer && uv sync --extra climbmix); until then this worker takes work from the other campaigns only' }
    return null
  }
  if (source.kind !== 'served') return null
  if (!o.token) return { name, level: 'warn', detail: 'served by the coordinator: not checked without a worker token', fix: 'pass --token' }
  const manifest = await fetchManifest({ httpBase: o.httpBase, dataPath: `/data/${c.name}`, token: o.token })
  const dir = join(o.stateDir, 'data', '_served', manifest.id)
  const mb = (manifest.files.reduce((n, f) => n + f.size, 0) / 1e6).toFixed(1)
  if (!existsSync(join(dir, 'meta.json'))) return { name, level: 'warn', detail: `served by the coordinator, not downloaded yet (${mb} MB)`, fix: '`worker join` downloads it on its first start' }
  const found = await describePrepared({ python: python.path, trainerDir: o.trainerDir, dataDir: dir, profile: c.spec.profile })
  if (!c.spec.fingerprint || found.fingerprint === c.spec.fingerprint) return { name, level: 'ok', detail: `served data set here (${mb} MB), fingerprint ${found.fingerprint.slice(0, 12)}…` }
  return { name, level: 'fail', detail: `the served data set here has fingerprint ${found.fingerprint.slice(0, 12)}…, not the campaign's ${c.spec.fingerprint.slice(0, 12)}…`, fix: `delete ${dir} and let \`worker join\` download it again` }
}

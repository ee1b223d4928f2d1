import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { resolve } from 'node:path'
import { execa } from 'execa'
import { bundledFile, type Profile } from '@autoresearch-grid/shared'
import { parseDescription, type DataDescription } from './describe.ts'

export interface EnsurePreparedOptions {
  python: string
  /** Folder holding the locked `prepare.py`. */
  trainerDir: string
  /** `AUTORESEARCH_CACHE`. */
  cacheDir: string
  /** The campaign's tokenizer, served by the coordinator; without one prepare.py trains its own. */
  tokenizerFile?: string
  /** `embedded` (default), `climbmix` or `dir:PATH`. */
  source?: string
  /** climbmix: how many training shards (prepare.py's `--num-shards`). */
  numShards?: number
  /** Vocabulary for a tokenizer prepare.py trains itself (ignored with `tokenizerFile`). */
  vocabSize?: number
  /** The fingerprint covers the profile's evaluation constants, so it must match the campaign's. */
  profile?: Profile
  /** More environment, e.g. `AUTORESEARCH_EMBEDDED_DIR`. */
  extraEnv?: Record<string, string>
  /** Each line prepare.py prints (downloads and tokenizing can take a while). */
  onLine?: (line: string) => void
  signal?: AbortSignal
}

export interface PreparedData extends DataDescription {
  /** True when this call had to prepare; false when the data was already there. */
  prepared: boolean
}

export class PrepareError extends Error {
  override name = 'PrepareError'
}

const TAIL_LINES = 30

/**
 * In a checkout prepare.py finds the embedded corpus in node_modules itself; a release bundle
 * carries it in dist/corpus and says so, unless AUTORESEARCH_EMBEDDED_DIR already points elsewhere.
 */
export function embeddedCorpusEnv(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const corpus = bundledFile('corpus')
  return corpus && !env.AUTORESEARCH_EMBEDDED_DIR ? { AUTORESEARCH_EMBEDDED_DIR: corpus } : {}
}

async function sha256(path: string): Promise<string> {
  return createHash('sha256').update(await readFile(path)).digest('hex')
}

/**
 * Makes sure the data for a campaign is prepared and says which it is. `prepare.py --check` comes
 * first because preparing can mean downloading gigabytes; prepare.py itself keys its cache on
 * source, vocabulary and tokenizer digest, so a different tokenizer is simply "not prepared".
 *
 * `--check` does not make the data set current, so callers should pass `dataDir` to the trainer as
 * `AUTORESEARCH_DATA` (a cache can hold several campaigns' data).
 */
export async function ensurePrepared(options: EnsurePreparedOptions): Promise<PreparedData> {
  const tokenizerFile = options.tokenizerFile ? resolve(options.tokenizerFile) : undefined
  const flags: string[] = ['--source', options.source ?? 'embedded']
  if (options.numShards !== undefined) flags.push('--num-shards', String(options.numShards))
  if (tokenizerFile) flags.push('--tokenizer', tokenizerFile)
  else if (options.vocabSize !== undefined) flags.push('--vocab-size', String(options.vocabSize))

  const env: Record<string, string> = { ...embeddedCorpusEnv(), ...options.extraEnv, PYTHONUNBUFFERED: '1', AUTORESEARCH_CACHE: options.cacheDir }
  if (options.profile) env.AUTORESEARCH_PROFILE = options.profile

  const run = (args: string[], stream: boolean) => {
    const echo = function* (line: unknown) {
      if (stream) options.onLine?.(String(line))
      yield line
    }
    return execa(options.python, ['prepare.py', ...args], {
      cwd: options.trainerDir,
      env,
      stdin: 'ignore',
      stdout: [echo],
      stderr: [echo],
      all: true,
      reject: false,
      cancelSignal: options.signal,
      forceKillAfterDelay: 5000,
    })
  }

  const check = await run([...flags, '--check'], false)
  // A cached data set whose tokenizer is not the campaign's (a cache entry from some other version
  // of prepare.py) is rebuilt rather than trusted.
  let force = false
  if (check.exitCode === 0) {
    const found = parseDescription(String(check.stdout))
    if (!tokenizerFile || (await sha256(found.tokenizerPath)) === (await sha256(tokenizerFile))) return { ...found, prepared: false }
    force = true
  }
  if (options.signal?.aborted) throw new PrepareError('preparing data was cancelled')

  const prep = await run(force ? [...flags, '--force'] : flags, true)
  const tail = String(prep.all ?? '').trim().split('\n').slice(-TAIL_LINES).join('\n')
  if (prep.isCanceled) throw new PrepareError('preparing data was cancelled')
  if (prep.exitCode !== 0) {
    const why = prep.exitCode === undefined ? prep.shortMessage : `exit code ${prep.exitCode}${prep.signal ? `, ${prep.signal}` : ''}`
    const errorLine = tail.split('\n').filter(l => /^error:|Error\b/.test(l)).pop()
    throw new PrepareError(`prepare.py ${flags.join(' ')} failed (${why})${errorLine ? `: ${errorLine}` : ''}\n--- prepare log (last ${TAIL_LINES} lines) ---\n${tail}`)
  }
  try {
    return { ...parseDescription(String(prep.stdout)), prepared: true }
  } catch (err) {
    throw new PrepareError(`prepare.py succeeded but ${(err as Error).message}\n--- prepare log ---\n${tail}`)
  }
}

/**
 * Describes a prepared data folder that did not come from this machine's prepare.py (a data set
 * the coordinator served): the same `key: value` lines, computed by prepare.py's own `describe`
 * and `fingerprint`, so the fingerprint means exactly what it means everywhere else.
 */
export async function describePrepared(options: { python: string; trainerDir: string; dataDir: string; profile: Profile; signal?: AbortSignal }): Promise<DataDescription> {
  const r = await execa(options.python, ['-c', 'import sys, prepare; prepare.describe(prepare.Data(sys.argv[1]), sys.argv[2])', options.dataDir, options.profile], {
    cwd: options.trainerDir, env: { PYTHONUNBUFFERED: '1', AUTORESEARCH_PROFILE: options.profile, PYTHONDONTWRITEBYTECODE: '1' }, stdin: 'ignore', reject: false, all: true, cancelSignal: options.signal,
  })
  if (r.exitCode !== 0) throw new PrepareError(`could not read the data set in ${options.dataDir}: ${String(r.all ?? r.shortMessage).trim().split('\n').slice(-5).join('\n')}`)
  return parseDescription(String(r.stdout))
}

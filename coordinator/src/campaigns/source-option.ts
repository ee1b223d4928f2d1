import { basename, resolve } from 'node:path'
import type { DataSource } from '@autoresearch-grid/shared'
import { UserError } from '../errors.ts'

/** What `campaign create --source … [--num-shards N]` means: the campaign's data source and how the coordinator prepares it. */
export interface SourceChoice {
  data: DataSource
  /** prepare.py's `--source`. */
  prepareSource: string
  numShards?: number
}

export const DEFAULT_CLIMBMIX_SHARDS = 10

/** Pure: reads the option; a folder's existence is prepare.py's to check. */
export function parseSourceOption(source: string, numShards?: number): SourceChoice {
  const s = source.trim()
  if (numShards !== undefined && s !== 'climbmix') throw new UserError(`--num-shards is for --source climbmix, not ${s}`)
  if (s === 'embedded') return { data: { kind: 'embedded' }, prepareSource: 'embedded' }
  if (s === 'climbmix') {
    const shards = numShards ?? DEFAULT_CLIMBMIX_SHARDS
    if (!Number.isInteger(shards) || shards < 1 || shards > 6542) throw new UserError(`--num-shards must be between 1 and 6542 (got ${shards})`)
    return { data: { kind: 'climbmix', shards }, prepareSource: 'climbmix', numShards: shards }
  }
  if (s.startsWith('dir:')) {
    const path = s.slice(4).trim()
    if (!path) throw new UserError('--source dir: needs a folder, e.g. --source dir:/data/emails')
    const abs = resolve(path)
    return { data: { kind: 'served', label: (basename(abs) || abs).slice(0, 80) }, prepareSource: `dir:${abs}` }
  }
  throw new UserError(`--source ${JSON.stringify(source)}: use embedded, climbmix (with --num-shards N) or dir:PATH (a folder of .txt/.jsonl/.parquet only this coordinator has; it serves the prepared data to workers)`)
}

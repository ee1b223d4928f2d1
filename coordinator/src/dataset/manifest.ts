import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { eq, sql } from 'drizzle-orm'
import { datasetId, DatasetManifest, type DatasetFile, fileRole } from '@autoresearch-grid/shared'
import type { Ctx } from '../context.ts'
import { campaignData } from '../db/schema.ts'
import { prepared } from '../db/prepared.ts'
import { UserError } from '../errors.ts'

/**
 * The prepared data sets a coordinator serves (campaigns whose data only it has, DESIGN §10):
 * made once at `campaign create --source dir:PATH` from prepare.py's folder, hashed, and recorded
 * with the campaign. What workers download is described by the manifest; routes.ts serves it.
 */

/** prepare.py's data folder holds exactly these; anything else in it is not served. */
export const DATASET_FILES = ['meta.json', 'tokenizer.model', 'token_bytes.npy', 'train.bin', 'train_docs.npy', 'val.bin', 'val_docs.npy'] as const

async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256')
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) h.update(chunk as Buffer)
  return h.digest('hex')
}

const sha256Text = (text: string) => createHash('sha256').update(text).digest('hex')

/** Hashes a prepared data folder into its manifest. */
export async function buildManifest(dir: string): Promise<DatasetManifest> {
  const present = new Set(await readdir(dir).catch(() => { throw new UserError(`${dir} is not a prepared data folder`) }))
  const missing = DATASET_FILES.filter(f => !present.has(f))
  if (missing.length) throw new UserError(`${dir} is not a complete prepared data set (no ${missing.join(', ')}): run prepare.py again`)
  const files: DatasetFile[] = []
  for (const name of DATASET_FILES) {
    const path = join(dir, name)
    files.push({ name, size: (await stat(path)).size, sha256: await sha256File(path), role: fileRole(name) })
  }
  return DatasetManifest.parse({ id: datasetId(files, sha256Text), files })
}

const q = prepared(db => ({
  one: db.select().from(campaignData).where(eq(campaignData.campaign, sql.placeholder('campaign'))).prepare(),
}))

export interface ServedData {
  campaign: string
  source: string
  dir: string
  manifest: DatasetManifest
}

/** Records the data set a campaign serves (inside campaign creation). */
export function recordServedData(ctx: Pick<Ctx, 'db'>, served: ServedData): void {
  ctx.db.insert(campaignData).values({ campaign: served.campaign, source: served.source, dir: served.dir, manifest: served.manifest }).run()
}

export function servedData(ctx: Pick<Ctx, 'db'>, campaign: string): ServedData | null {
  const row = q(ctx.db).one.get({ campaign })
  return row ? { campaign: row.campaign, source: row.source, dir: row.dir, manifest: row.manifest as DatasetManifest } : null
}

/** The URL path workers download a campaign's data set from (its manifest; files under `files/`). */
export function dataPathOf(campaign: string): string {
  return `/data/${campaign}`
}

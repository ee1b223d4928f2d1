import { eq, sql } from 'drizzle-orm'
import { mkdir, copyFile } from 'node:fs/promises'
import { join } from 'node:path'
import { CampaignName, CampaignSpec, type CampaignSpecInput } from '@autoresearch-grid/shared'
import type { Ctx } from '../context.ts'
import { campaigns } from '../db/schema.ts'
import { logEvent } from '../events/log.ts'
import { UserError } from '../errors.ts'
import { prepared } from '../db/prepared.ts'
import { programProblem, setProgram } from './program.ts'
import { buildManifest, recordServedData } from '../dataset/manifest.ts'

export const SEED_AUTHOR = { name: 'autoresearch-grid', email: 'seed@autoresearch-grid.local' }

export interface CreateCampaign {
  name: string
  spec: CampaignSpecInput
  /** The editable files of the starting point, e.g. { 'train.py': ... }. */
  seed: Record<string, string>
  /** A tokenizer file to pin for every worker (copied into the data dir). */
  tokenizerFile?: string
  /**
   * For a `served` data source: the prepared data folder the coordinator serves to workers, and
   * the source it was prepared from (`dir:PATH`, kept on the coordinator only).
   */
  served?: { source: string; dir: string }
  /** The campaign's first program.md, and who wrote it (campaigns/program.ts). */
  program?: { text: string; author: { name: string; email: string } }
}

export async function createCampaign(ctx: Ctx, input: CreateCampaign) {
  const name = CampaignName.safeParse(input.name)
  if (!name.success) throw new UserError(`bad campaign name "${input.name}": ${name.error.issues[0].message}`)
  const spec = CampaignSpec.parse(input.spec)
  if (getCampaign(ctx, name.data)) throw new UserError(`campaign "${name.data}" already exists; pick another name`, 'conflict')
  for (const f of spec.editableFiles) if (!(f in input.seed)) throw new UserError(`the seed has no ${f}, but the campaign says it is editable`)
  if ((spec.data.kind === 'served') !== Boolean(input.served)) throw new UserError(spec.data.kind === 'served' ? 'a served data source needs the prepared data folder to serve' : `a ${spec.data.kind} data source is prepared by every worker; only a served one has a folder`)
  const program = input.program ? programProblem(input.program.text) : null
  if (program) throw new UserError(program)
  const manifest = input.served ? await buildManifest(input.served.dir) : null
  let tokenizerFile: string | null = null
  if (input.tokenizerFile) {
    await mkdir(join(ctx.dataDir, 'tokenizers'), { recursive: true })
    tokenizerFile = join('tokenizers', `${name.data}.model`)
    await copyFile(input.tokenizerFile, join(ctx.dataDir, tokenizerFile))
  }
  const branch = `autoresearch/${name.data}`
  const files = Object.fromEntries(spec.editableFiles.map(f => [f, input.seed[f]]))
  const seed = await ctx.git.commit({ files, parents: [], message: `seed: ${name.data}\n\nThe starting point of the campaign.`, author: SEED_AUTHOR })
  ctx.db.transaction(tx => {
    tx.insert(campaigns).values({ name: name.data, branch, spec, bestCommit: seed, tokenizerFile }).run()
    if (input.served && manifest) recordServedData({ db: tx as never }, { campaign: name.data, source: input.served.source, dir: input.served.dir, manifest })
    logEvent(tx, name.data, 'campaign-created', { branch, seed, spec })
  })
  await ctx.git.setRef(`refs/heads/${branch}`, seed)
  if (input.program) await setProgram(ctx, name.data, input.program.text, input.program.author, 'program.md at campaign creation')
  ctx.bus.emit({ type: 'campaign', campaign: name.data })
  return getCampaign(ctx, name.data)!
}

export type Campaign = typeof campaigns.$inferSelect & { spec: CampaignSpec }

const q = prepared(db => ({
  one: db.select().from(campaigns).where(eq(campaigns.name, sql.placeholder('name'))).prepare(),
  all: db.select().from(campaigns).prepare(),
}))

export function getCampaign(ctx: Pick<Ctx, 'db'>, name: string): Campaign | undefined {
  return q(ctx.db).one.get({ name }) as Campaign | undefined
}

export function listCampaigns(ctx: Pick<Ctx, 'db'>): Campaign[] {
  return q(ctx.db).all.all() as Campaign[]
}

export function setCampaignStatus(ctx: Ctx, name: string, status: 'active' | 'paused') {
  if (!getCampaign(ctx, name)) throw new UserError(`no campaign "${name}"`, 'not-found')
  ctx.db.transaction(tx => {
    tx.update(campaigns).set({ status }).where(eq(campaigns.name, name)).run()
    logEvent(tx, name, `campaign-${status === 'paused' ? 'paused' : 'resumed'}`, {})
  })
  ctx.bus.emit({ type: 'campaign', campaign: name })
  if (status === 'active') ctx.bus.emit({ type: 'work-available', campaign: name })
}

/** The DB is the truth for each campaign's best; after a crash the branch ref is brought in line. */
export async function syncBranches(ctx: Ctx): Promise<void> {
  for (const c of listCampaigns(ctx)) {
    const ref = `refs/heads/${c.branch}`
    if ((await ctx.git.resolve(ref)) !== c.bestCommit) await ctx.git.setRef(ref, c.bestCommit)
  }
}

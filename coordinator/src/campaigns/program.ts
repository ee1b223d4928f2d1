import { eq, sql } from 'drizzle-orm'
import { LIMITS } from '@autoresearch-grid/shared'
import { stateKey, type Ctx } from '../context.ts'
import { campaignPrograms, campaigns } from '../db/schema.ts'
import { prepared } from '../db/prepared.ts'
import { logEvent } from '../events/log.ts'
import type { Author } from '../git/store.ts'
import { UserError } from '../errors.ts'

/**
 * program.md per campaign: the maintainer's research direction, which every unit carries to its
 * agent (DESIGN §9). Its text and history live in the git store, one commit per version on
 * `refs/programs/<campaign>` (author, time and message, as git keeps them: `git log
 * refs/programs/<campaign>` in a clone shows who steered the campaign when); the campaign_programs
 * row names the current commit, so a lease knows from one indexed read whether its cached copy is
 * current, also after `coordinator program set` changed it from another process.
 */

export const PROGRAM_FILE = 'program.md'

export interface Program {
  /** The commit that holds this program.md. */
  version: string
  text: string
}

export interface ProgramVersion {
  version: string
  author: string
  email: string
  /** Milliseconds since the epoch. */
  date: number
  message: string
}

export function programRef(campaign: string): string {
  return `refs/programs/${campaign}`
}

const q = prepared(db => ({
  current: db.select().from(campaignPrograms).where(eq(campaignPrograms.campaign, sql.placeholder('campaign'))).prepare(),
  // Its own look-up rather than campaigns.ts's getCampaign: campaigns.ts imports this file to
  // write a campaign's first program.md, and the two must not import each other.
  campaign: db.select({ name: campaigns.name }).from(campaigns).where(eq(campaigns.name, sql.placeholder('campaign'))).prepare(),
}))

function mustExist(ctx: Pick<Ctx, 'db'>, campaign: string): void {
  if (!q(ctx.db).campaign.get({ campaign })) throw new UserError(`no campaign "${campaign}"`, 'not-found')
}

/** Texts by version, per coordinator (ctx.state): commits never change. */
const TEXTS = stateKey('program.md texts by version', () => new Map<string, string>())
const HISTORIES = stateKey('program.md histories by campaign and current version', () => new Map<string, ProgramVersion[]>())

/** Why a program.md cannot be used, with what to do; null if it is fine. */
export function programProblem(text: string): string | null {
  if (!text.trim()) return 'program.md is empty: write the research direction the agents should follow'
  if (text.length > LIMITS.programChars) return `program.md has ${text.length} characters; at most ${LIMITS.programChars} are sent with every unit: shorten it`
  if (text.includes('\u0000')) return 'program.md contains a NUL byte: is it a text file?'
  return null
}

/**
 * Makes `text` the campaign's program.md: a new commit on refs/programs/<campaign> by `author`,
 * then the pointer row. Units leased from now on carry it. Returns the new version.
 */
export async function setProgram(ctx: Ctx, campaign: string, text: string, author: Author, message = 'program.md updated'): Promise<Program> {
  mustExist(ctx, campaign)
  const problem = programProblem(text)
  if (problem) throw new UserError(problem)
  const ref = programRef(campaign)
  for (let attempt = 0; attempt < 5; attempt++) {
    const parent = await ctx.git.resolve(ref)
    if (parent && (await ctx.git.readFile(parent, PROGRAM_FILE)) === text) return { version: parent, text }
    const version = await ctx.git.commit({ files: { [PROGRAM_FILE]: text }, parents: parent ? [parent] : [], message: message.trim() || 'program.md updated', author, date: ctx.now() })
    // Two maintainers saving at once: the loser builds on the winner's version and tries again.
    if (!(await ctx.git.compareAndSwap(ref, version, parent))) continue
    const now = ctx.now()
    ctx.db.transaction(tx => {
      tx.insert(campaignPrograms).values({ campaign, version, updatedAt: now })
        .onConflictDoUpdate({ target: campaignPrograms.campaign, set: { version, updatedAt: now } }).run()
      logEvent(tx, campaign, 'program-changed', { version, author: author.name, message: message.slice(0, 200) })
    })
    ctx.state.of(TEXTS).set(version, text)
    ctx.bus.emit({ type: 'campaign', campaign })
    return { version, text }
  }
  throw new UserError('program.md is being changed by someone else at the same time: try again', 'conflict')
}

/** The campaign's current program.md, or null when it has none (campaigns made before programs). */
export async function currentProgram(ctx: Ctx, campaign: string): Promise<Program | null> {
  const version = currentProgramVersion(ctx, campaign)
  return version === null ? null : programAt(ctx, version)
}

/** The version of the campaign's current program.md, without its text: synchronous, for a transaction. */
export function currentProgramVersion(ctx: Pick<Ctx, 'db'>, campaign: string): string | null {
  return q(ctx.db).current.get({ campaign })?.version ?? null
}

/** program.md as of a version (a commit: its text never changes, so it is kept by version). */
export async function programAt(ctx: Ctx, version: string): Promise<Program> {
  const texts = ctx.state.of(TEXTS)
  let text = texts.get(version)
  if (text === undefined) {
    text = await ctx.git.readFile(version, PROGRAM_FILE)
    if (texts.size > 200) texts.clear()
    texts.set(version, text)
  }
  return { version, text }
}

/** Every version, newest first. */
export async function programHistory(ctx: Ctx, campaign: string, max = 50): Promise<ProgramVersion[]> {
  mustExist(ctx, campaign)
  // The history changes only with the current version: kept by it, so the dashboard's anonymous
  // readers do not start two git processes (rev-parse, log) a read.
  const key = `${campaign}\0${currentProgramVersion(ctx, campaign)}\0${max}`
  const histories = ctx.state.of(HISTORIES)
  const known = histories.get(key)
  if (known) return known
  const history = !(await ctx.git.resolve(programRef(campaign))) ? []
    : (await ctx.git.log(programRef(campaign), max)).map(c => ({ version: c.commit, author: c.author, email: c.email, date: c.date, message: c.subject }))
  if (histories.size >= 1000) histories.clear()
  histories.set(key, history)
  return history
}

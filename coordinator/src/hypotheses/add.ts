import { and, desc, eq, inArray } from 'drizzle-orm'
import { LIMITS } from '@autoresearch-grid/shared'
import type { Ctx } from '../context.ts'
import { newId, stateKey } from '../context.ts'
import { hypotheses } from '../db/schema.ts'
import { logEvent } from '../events/log.ts'
import { getCampaign } from '../campaigns/campaigns.ts'
import { UserError } from '../errors.ts'
import { dedupKey, findDuplicate, ideaOf, type Idea } from './dedup.ts'

export interface NewHypothesis {
  title: string
  body?: string
  source: 'maintainer' | 'agent' | 'system'
  author?: string | null
  priority?: number
  parentExperiment?: string | null
  /** The contributor whose agent proposed it: what the proposal quota counts (hypotheses/quota.ts). */
  contributorId?: string | null
}

/**
 * Hypotheses a new one is compared with for near duplicates: the campaign's newest. Every one was
 * normalized again for every new one, in the event loop: at 5,000 in a campaign (a contributor may
 * store 30 an hour, a report carries three) one took ~0.2 s (test/hostile/hypothesis-cost.test.ts).
 * Their normalized forms are kept (hypotheses never change their title), and exact duplicates (the
 * same words in the same order, `dedup_key`) are found at any age.
 */
export const DEDUP_WINDOW = 1000
const IDEAS = stateKey('normalized hypothesis titles', () => new Map<string, Idea>())

/** Adds an idea to a campaign's queue unless an open or tested one says the same; returns its id. */
export function addHypothesis(ctx: Ctx, campaign: string, h: NewHypothesis): { id: string; duplicateOf: string | null } {
  if (!getCampaign(ctx, campaign)) throw new UserError(`no campaign "${campaign}"; list them with \`coordinator campaign list\``, 'not-found')
  const title = h.title.trim()
  if (title.length < 3 || title.length > LIMITS.hypothesisTitleChars) throw new UserError(`a hypothesis title is 3-${LIMITS.hypothesisTitleChars} characters`)
  const key = dedupKey(title)
  const id = newId('h')
  const counted = and(eq(hypotheses.campaign, campaign), inArray(hypotheses.status, ['open', 'in-progress', 'tested', 'merged', 'rejected']))
  // The same words in the same order, at any age; a near duplicate among the newest DEDUP_WINDOW.
  const same = ctx.db.select({ id: hypotheses.id }).from(hypotheses).where(and(counted, eq(hypotheses.dedupKey, key))).orderBy(hypotheses.createdAt).limit(1).get()
  const known = same ? [] : ctx.db.select({ id: hypotheses.id, title: hypotheses.title }).from(hypotheses).where(counted)
    .orderBy(desc(hypotheses.createdAt)).limit(DEDUP_WINDOW).all()
  const ideas = ctx.state.of(IDEAS)
  if (ideas.size > 4 * DEDUP_WINDOW) ideas.clear()
  const dup = same ?? findDuplicate(title, known.map(k => {
    let idea = ideas.get(k.id)
    if (!idea) ideas.set(k.id, (idea = ideaOf(k.title)))
    return { id: k.id, text: k.title, idea }
  }))
  const existing = dup ? { id: dup.id } : undefined
  ctx.db.transaction(tx => {
    tx.insert(hypotheses).values({
      id, campaign, title, body: (h.body ?? '').slice(0, LIMITS.hypothesisBodyChars), source: h.source, author: h.author ?? null,
      priority: h.priority ?? 0, status: existing ? 'duplicate' : 'open', dedupKey: key, duplicateOf: existing?.id ?? null,
      parentExperiment: h.parentExperiment ?? null, contributorId: h.contributorId ?? null, createdAt: ctx.now(),
    }).run()
    logEvent(tx, campaign, 'hypothesis-added', { hypothesis: id, title, source: h.source, duplicateOf: existing?.id ?? null })
  })
  if (!existing) ctx.bus.emit({ type: 'work-available', campaign })
  return { id, duplicateOf: existing?.id ?? null }
}

export function markHypothesis(ctx: Pick<Ctx, 'db'>, id: string, status: 'open' | 'tested' | 'merged' | 'rejected'): void {
  ctx.db.update(hypotheses).set({ status }).where(eq(hypotheses.id, id)).run()
}

import { and, eq, sql } from 'drizzle-orm'
import type { Ctx } from '../context.ts'
import { reviews } from '../db/schema.ts'
import { listCampaigns } from '../campaigns/campaigns.ts'
import { logEvent } from '../events/log.ts'
import { effectiveReview } from './policy.ts'

/**
 * At `coordinator start`: each campaign whose review falls back (it asks for an agent and this
 * coordinator has no key) gets a `review-fallback` event in its audit log, and the lines returned
 * say so on the console, with how many candidates already wait for a review. The dashboard shows
 * the same warning as a banner (dashboard.summary → review.warning).
 */
export function announceReview(app: Ctx): string[] {
  const lines: string[] = []
  for (const c of listCampaigns(app)) {
    const eff = effectiveReview(c.spec.review, app.settings.reviewAgent !== null)
    if (eff.warning) {
      logEvent(app.db, c.name, 'review-fallback', { requested: eff.requested, mode: eff.mode, warning: eff.warning })
      lines.push(`warning: campaign ${c.name}: ${eff.warning}`)
    }
    const waiting = app.db.select({ n: sql<number>`count(*)` }).from(reviews).where(and(eq(reviews.campaign, c.name), eq(reviews.state, 'pending'))).get()!.n
    if (waiting) lines.push(`campaign ${c.name}: ${waiting} candidate(s) await review (${eff.mode}); the maintainer decides on the dashboard`)
  }
  return lines
}

import { eq } from 'drizzle-orm'
import type { ReviewMode } from '@autoresearch-grid/shared'
import type { Ctx } from '../context.ts'
import { campaigns } from '../db/schema.ts'
import { logEvent } from '../events/log.ts'
import { getCampaign } from '../campaigns/campaigns.ts'
import { UserError } from '../errors.ts'
import { DEFAULT_REVIEW, effectiveReview } from './policy.ts'

/**
 * Changes who reviews the campaign's candidates from now on. Reviews already under way keep the
 * mode they began with (the maintainer can still decide them on the dashboard).
 */
export function setCampaignReview(ctx: Ctx, name: string, review: ReviewMode) {
  const c = getCampaign(ctx, name)
  if (!c) throw new UserError(`no campaign "${name}"`, 'not-found')
  const eff = effectiveReview(review, ctx.settings.reviewAgent !== null)
  ctx.db.transaction(tx => {
    tx.update(campaigns).set({ spec: { ...c.spec, review } }).where(eq(campaigns.name, name)).run()
    logEvent(tx, name, 'campaign-review', { from: c.spec.review ?? DEFAULT_REVIEW, review, effective: eff.mode, warning: eff.warning })
  })
  ctx.bus.emit({ type: 'campaign', campaign: name })
  return eff
}

import { eq } from 'drizzle-orm'
import type { Ctx } from '../context.ts'
import { hypotheses } from '../db/schema.ts'
import { logEvent } from '../events/log.ts'
import { UserError } from '../errors.ts'

export interface HypothesisChange {
  id: string
  priority?: number
  /** Re-open a rejected idea, or drop one from the queue. */
  status?: 'open' | 'rejected'
}

/** The maintainer reorders the queue: a new priority, or an idea dropped or brought back. */
export function updateHypothesis(app: Ctx, change: HypothesisChange) {
  const h = app.db.select().from(hypotheses).where(eq(hypotheses.id, change.id)).get()
  if (!h) throw new UserError(`no hypothesis "${change.id}"`, 'not-found')
  const set = { priority: change.priority ?? h.priority, status: change.status ?? h.status }
  app.db.transaction(tx => {
    tx.update(hypotheses).set(set).where(eq(hypotheses.id, h.id)).run()
    logEvent(tx, h.campaign, 'hypothesis-updated', { hypothesis: h.id, ...set })
  })
  // The scheduler picks the next hypothesis by priority: idle workers should look again.
  app.bus.emit({ type: 'work-available', campaign: h.campaign })
  return { id: h.id, ...set }
}

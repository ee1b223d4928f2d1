import { eq } from 'drizzle-orm'
import type { Ctx } from '../context.ts'
import { contributors } from '../db/schema.ts'
import { logEvent } from '../events/log.ts'
import { getCampaign } from '../campaigns/campaigns.ts'
import { UserError } from '../errors.ts'
import { upsertClass } from './approval.ts'

/**
 * The maintainer approves a hardware class (or withdraws approval). Its held candidates are to be
 * judged again afterwards (units/redecide.ts): the admin API does both, so this folder stays below
 * the work units that read it.
 */
export function approveClass(ctx: Ctx, campaign: string, hardwareClass: string, approved: boolean): void {
  if (!getCampaign(ctx, campaign)) throw new UserError(`no campaign "${campaign}"`, 'not-found')
  ctx.db.transaction(tx => {
    upsertClass(tx, campaign, hardwareClass, { approved, approvedBy: approved ? 'maintainer' : null })
    logEvent(tx, campaign, approved ? 'class-approved' : 'class-unapproved', { hardwareClass, by: 'maintainer' })
  })
}

/**
 * Lets a class's contributors verify their own candidates (a class with a single contributor
 * could otherwise never merge), or stops it; the held candidates are judged again afterwards, as
 * with `approveClass`.
 */
export function setClassSelfVerification(ctx: Ctx, campaign: string, hardwareClass: string, allow: boolean): void {
  if (!getCampaign(ctx, campaign)) throw new UserError(`no campaign "${campaign}"`, 'not-found')
  ctx.db.transaction(tx => {
    upsertClass(tx, campaign, hardwareClass, { allowSelfVerification: allow })
    logEvent(tx, campaign, 'class-self-verification', { hardwareClass, allow })
  })
}

/** The maintainer looked at a suspect contributor and clears it: earlier unreproduced claims stop counting. */
export function clearSuspect(ctx: Ctx, contributorId: string) {
  const changed = ctx.db.update(contributors).set({ suspectClearedAt: ctx.now() }).where(eq(contributors.id, contributorId)).run().changes
  if (!changed) throw new UserError(`no contributor "${contributorId}"`, 'not-found')
  logEvent(ctx.db, null, 'suspect-cleared', { contributor: contributorId })
  ctx.bus.emit({ type: 'work-available', campaign: '*' })
  return { cleared: true }
}

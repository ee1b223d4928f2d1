/**
 * What every report, trained (units/report.ts) or reused (units/reuse.ts), does once it is stored,
 * or when its transaction finds the unit no longer open to it.
 */
import { eq, sql } from 'drizzle-orm'
import type { Report, ReportReply } from '@autoresearch-grid/shared'
import type { Ctx } from '../context.ts'
import { experiments, workUnits } from '../db/schema.ts'
import { prepared } from '../db/prepared.ts'
import type { Campaign } from '../campaigns/campaigns.ts'
import { UserError } from '../errors.ts'
import type { Worker } from '../workers/registry.ts'
import { addHypothesis } from '../hypotheses/add.ts'
import { proposalRoom } from '../hypotheses/quota.ts'
import type { CancelledRun } from './judge.ts'

const p = sql.placeholder
const q = prepared(db => ({
  ofUnit: db.select().from(experiments).where(eq(experiments.unitId, p('unit'))).prepare(),
  state: db.select({ state: workUnits.state }).from(workUnits).where(eq(workUnits.id, p('id'))).prepare(),
}))

/** The answer to a report whose transaction found its unit no longer open to it. */
export function refusedReply(ctx: Pick<Ctx, 'db'>, unitId: string): ReportReply {
  const again = q(ctx.db).ofUnit.get({ unit: unitId })
  if (again) return { experimentId: again.id, decision: again.decision, duplicate: true }
  if (q(ctx.db).state.get({ id: unitId })?.state === 'cancelled') throw new UserError(`work unit "${unitId}" was cancelled while your report was being stored`)
  throw new UserError(`work unit "${unitId}" was re-assigned while your report was being stored`)
}

/**
 * After a report's transaction: the agent's follow-up hypotheses, within the contributor's
 * proposal quota (beyond it they are dropped; the result itself still counts), then the news.
 */
export function announceReport(ctx: Ctx, worker: Worker, c: Campaign, r: Report, experimentId: string, decided: { id: string; status: string }[]): void {
  // (The quota costs a count of the contributor's hypotheses: asked only when there are any.)
  for (const f of r.followUps.length ? r.followUps.slice(0, proposalRoom(ctx, c.name, worker.contributorId)) : []) {
    addHypothesis(ctx, c.name, { title: f.title, body: f.body, source: 'agent', author: worker.name, parentExperiment: experimentId, contributorId: worker.contributorId })
  }
  for (const d of decided) ctx.bus.emit({ type: 'experiment', campaign: c.name, experimentId: d.id, status: d.status })
  ctx.bus.emit({ type: 'unit-done', workerId: worker.id, unitId: r.unitId })
  ctx.bus.emit({ type: 'work-available', campaign: c.name })
}

/**
 * After the transaction that cancelled running verifications (units/judge.ts applyDecision): each
 * worker's feed sends `cancel` for its unit, so its GPU stops now, and looks for new work for the
 * room freed. Never before the commit: a worker told to stop a unit the rollback kept would leave
 * it leased to nobody running it until the lease ran out.
 */
export function announceCancelled(ctx: Pick<Ctx, 'bus'>, runs: readonly CancelledRun[]): void {
  for (const r of runs) ctx.bus.emit({ type: 'unit-cancelled', workerId: r.workerId, unitId: r.unitId, reason: r.reason })
}

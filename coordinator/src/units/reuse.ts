import { eq } from 'drizzle-orm'
import { LIMITS, sourceHash, type Report, type ReportReply, isCandidate, linesDelta as countLinesDelta } from '@autoresearch-grid/shared'
import type { Ctx } from '../context.ts'
import { newId } from '../context.ts'
import { experiments, hypotheses, workUnits } from '../db/schema.ts'
import { logEvent } from '../events/log.ts'
import { type Campaign } from '../campaigns/campaigns.ts'
import { UserError } from '../errors.ts'
import type { Worker } from '../workers/registry.ts'
import { addHypothesis } from '../hypotheses/add.ts'
import { proposalRoom } from '../hypotheses/quota.ts'
import { sourceOf } from './assign.ts'

type Unit = typeof workUnits.$inferSelect

/**
 * A report that says "not trained: `worker.known` answered that this exact source was already
 * measured on my class" (DESIGN §8: an identical train.py is never trained twice). The unit gets
 * its experiment, pointing at the earlier commit, with no new measurement: the earlier one stands
 * and the ratchet has nothing new to decide. Only candidates can be reused; baselines and
 * verifications exist to measure again.
 */
export async function ingestReuse(ctx: Ctx, worker: Worker, unit: Unit, c: Campaign, r: Report & { reused: { experimentId: string } }): Promise<ReportReply> {
  if (!isCandidate(unit.kind)) throw new UserError(`a ${unit.kind} unit exists to measure its code again: train it, do not report a reuse`)
  const hash = sourceHash(r.source)
  const earlier = ctx.db.select().from(experiments).where(eq(experiments.id, r.reused.experimentId)).get()
  if (!earlier || earlier.campaign !== c.name || earlier.sourceHash !== hash || earlier.hardwareClass !== worker.hardwareClass || earlier.valBpb === null)
    throw new UserError(`experiment "${r.reused.experimentId}" did not measure this source on ${worker.hardwareClass}: train it and report the run`)
  const linesDelta = countLinesDelta(await sourceOf(ctx, unit.parentCommit, c.spec.editableFiles), r.source)
  const id = newId('e')
  const now = ctx.now()
  const decision = `not trained: identical to experiment ${earlier.id} (val_bpb ${earlier.valBpb.toFixed(6)}, ${earlier.status}) on ${worker.hardwareClass}`
  const stored = ctx.db.transaction(tx => {
    const fresh = tx.select().from(workUnits).where(eq(workUnits.id, unit.id)).get()!
    if (fresh.leaseToken !== r.leaseToken || fresh.state === 'done') return false
    tx.insert(experiments).values({
      id, unitId: unit.id, campaign: c.name, kind: unit.kind, workerId: worker.id, contributorId: worker.contributorId, hardwareClass: worker.hardwareClass,
      hypothesisId: unit.hypothesisId, parentCommit: unit.parentCommit, commit: earlier.commit, description: r.description.slice(0, LIMITS.descriptionChars),
      diff: earlier.parentCommit === unit.parentCommit ? earlier.diff : '', sourceHash: hash, linesDelta, metrics: null, valBpb: null, status: 'discarded',
      decision, logTail: '', agentNotes: r.agentNotes, timings: r.timings, createdAt: now,
    }).run()
    tx.update(workUnits).set({ state: 'done', updatedAt: now }).where(eq(workUnits.id, unit.id)).run()
    if (unit.hypothesisId) tx.update(hypotheses).set({ status: 'tested' }).where(eq(hypotheses.id, unit.hypothesisId)).run()
    logEvent(tx, c.name, 'experiment', { experiment: id, worker: worker.id, kind: unit.kind, status: 'discarded', valBpb: null, reused: earlier.id })
    return true
  })
  if (!stored) {
    const again = ctx.db.select().from(experiments).where(eq(experiments.unitId, unit.id)).get()
    if (again) return { experimentId: again.id, decision: again.decision, duplicate: true }
    throw new UserError(`work unit "${unit.id}" was re-assigned while your report was being stored`)
  }
  await ctx.git.setRef(`refs/experiments/${id}`, earlier.commit)
  for (const f of r.followUps.slice(0, proposalRoom(ctx, c.name, worker.contributorId)))
    addHypothesis(ctx, c.name, { title: f.title, body: f.body, source: 'agent', author: worker.name, parentExperiment: id, contributorId: worker.contributorId })
  ctx.bus.emit({ type: 'experiment', campaign: c.name, experimentId: id, status: 'discarded' })
  ctx.bus.emit({ type: 'unit-done', workerId: worker.id, unitId: unit.id })
  ctx.bus.emit({ type: 'work-available', campaign: c.name })
  return { experimentId: id, decision, duplicate: false }
}

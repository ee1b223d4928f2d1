import { and, eq, sql } from 'drizzle-orm'
import { createHash } from 'node:crypto'
import { LIMITS, type Report, type ReportReply } from '@autoresearch-grid/shared'
import type { Ctx } from '../context.ts'
import { newId } from '../context.ts'
import { campaigns, contributors, experiments, hypotheses, measurements, merges, workUnits } from '../db/schema.ts'
import { logEvent, type Writer } from '../events/log.ts'
import { getCampaign, UserError, type Campaign } from '../campaigns/campaigns.ts'
import type { Worker } from '../workers/registry.ts'
import { addHypothesis } from '../hypotheses/add.ts'
import { judge } from './judge.ts'

type Experiment = typeof experiments.$inferSelect

export function sourceHash(files: Record<string, string>): string {
  const h = createHash('sha256')
  for (const name of Object.keys(files).sort()) h.update(name).update('\0').update(files[name]).update('\0')
  return h.digest('hex')
}

function commitMessage(r: Report, c: Campaign): string {
  const m = r.metrics
  const trailer = m ? `\n\nval_bpb: ${m.val_bpb.toFixed(6)}\ntraining_seconds: ${m.training_seconds}\nstatus: ${r.status}` : `\n\nstatus: ${r.status}`
  return `${r.description}${trailer}\ncampaign: ${c.name}`
}

/**
 * Takes a worker's result: stores the trained source as a commit under refs/experiments/<id>,
 * records the experiment and its measurement, lets the ratchet decide, and moves the campaign's
 * best when it says so. Idempotent by unit id + lease token: a repeated report gets the first
 * answer back. Everything about one report lands in one transaction.
 */
export async function ingestReport(ctx: Ctx, worker: Worker, r: Report): Promise<ReportReply> {
  const unit = ctx.db.select().from(workUnits).where(eq(workUnits.id, r.unitId)).get()
  if (!unit) throw new UserError(`unknown work unit "${r.unitId}"`)
  const previous = ctx.db.select().from(experiments).where(eq(experiments.unitId, unit.id)).get()
  if (previous) {
    if (previous.workerId !== worker.id) throw new UserError(`work unit "${unit.id}" was already reported by another worker`)
    return { experimentId: previous.id, decision: previous.decision, duplicate: true }
  }
  if (unit.leaseToken !== r.leaseToken) throw new UserError(`work unit "${unit.id}" was re-assigned after your lease ran out; this result is not needed`)
  if (unit.state === 'leased' && unit.workerId !== worker.id) throw new UserError(`work unit "${unit.id}" is leased to another worker`)
  if (unit.state === 'cancelled') throw new UserError(`work unit "${unit.id}" was cancelled`)
  const c = getCampaign(ctx, unit.campaign)!
  const extra = Object.keys(r.source).filter(f => !c.spec.editableFiles.includes(f))
  if (extra.length) throw new UserError(`only ${c.spec.editableFiles.join(', ')} may change; the report also carries ${extra.join(', ')}`)
  const missing = c.spec.editableFiles.filter(f => !(f in r.source))
  if (missing.length) throw new UserError(`the report lacks ${missing.join(', ')}`)

  const contributor = ctx.db.select().from(contributors).where(eq(contributors.id, worker.contributorId)).get()!
  const author = { name: contributor.name, email: contributor.email ?? `${contributor.id}@contributors.autoresearch-grid.local` }
  const commit = await ctx.git.commit({ files: r.source, parents: [unit.parentCommit], message: commitMessage(r, c), author })
  const id = newId('e')
  const now = ctx.now()

  const outcome = ctx.db.transaction(tx => {
    // Re-read inside the transaction: another report may have landed while git was writing.
    const fresh = tx.select().from(workUnits).where(eq(workUnits.id, unit.id)).get()!
    if (fresh.leaseToken !== r.leaseToken || fresh.state === 'done') return null
    const campaign = getCampaign({ db: tx as never }, c.name)!
    const exp: Experiment = {
      id, unitId: unit.id, campaign: c.name, kind: unit.kind, workerId: worker.id, contributorId: worker.contributorId,
      hardwareClass: worker.hardwareClass, hypothesisId: unit.hypothesisId, parentCommit: unit.parentCommit, commit,
      description: r.description.slice(0, LIMITS.descriptionChars), diff: r.diff, sourceHash: sourceHash(r.source), metrics: r.metrics,
      valBpb: r.metrics?.val_bpb ?? null, status: 'pending', decision: '', logTail: r.logTail, agentNotes: r.agentNotes,
      timings: r.timings, createdAt: now,
    }
    const verdict = judge(tx, campaign, exp, r.status)
    exp.status = verdict.status
    exp.decision = verdict.decision
    tx.insert(experiments).values(exp).run()
    if (verdict.measured && exp.valBpb !== null) {
      const measuredCommit = unit.kind === 'verify' && unit.targetCommit ? unit.targetCommit : unit.kind === 'baseline' ? unit.parentCommit : commit
      tx.insert(measurements).values({ campaign: c.name, commit: measuredCommit, hardwareClass: worker.hardwareClass, valBpb: exp.valBpb, experimentId: id, workerId: worker.id }).run()
    }
    tx.update(workUnits).set({ state: 'done', updatedAt: now }).where(eq(workUnits.id, unit.id)).run()
    if (unit.hypothesisId) {
      tx.update(hypotheses).set({ status: verdict.status === 'kept' ? 'merged' : 'tested' }).where(eq(hypotheses.id, unit.hypothesisId)).run()
    }
    logEvent(tx, c.name, 'experiment', { experiment: id, worker: worker.id, kind: unit.kind, status: exp.status, valBpb: exp.valBpb, decision: exp.decision })
    const moved = verdict.status === 'kept' ? promote(tx, campaign, exp) : null
    // A new baseline can settle candidates that were waiting for it.
    const settled = unit.kind === 'baseline' ? settlePending(tx, campaign, worker.hardwareClass) : []
    return { exp, moved: moved ?? settled.find(s => s.moved)?.moved ?? null, settled }
  })
  if (!outcome) {
    const again = ctx.db.select().from(experiments).where(eq(experiments.unitId, unit.id)).get()
    if (again) return { experimentId: again.id, decision: again.decision, duplicate: true }
    throw new UserError(`work unit "${unit.id}" was re-assigned while your report was being stored`)
  }
  await ctx.git.setRef(`refs/experiments/${id}`, commit)
  if (outcome.moved) {
    const best = getCampaign(ctx, c.name)!
    await ctx.git.setRef(`refs/heads/${best.branch}`, best.bestCommit)
    ctx.bus.emit({ type: 'best-changed', campaign: c.name, commit: best.bestCommit, valBpb: outcome.moved.valBpb })
  }
  for (const f of r.followUps) {
    addHypothesis(ctx, c.name, { title: f.title, body: f.body, source: 'agent', author: worker.name, parentExperiment: id })
  }
  ctx.bus.emit({ type: 'experiment', campaign: c.name, experimentId: id, status: outcome.exp.status })
  for (const s of outcome.settled) ctx.bus.emit({ type: 'experiment', campaign: c.name, experimentId: s.id, status: s.status })
  ctx.bus.emit({ type: 'unit-done', workerId: worker.id, unitId: unit.id })
  ctx.bus.emit({ type: 'work-available', campaign: c.name })
  return { experimentId: id, decision: outcome.exp.decision, duplicate: false }
}

/** Moves the campaign's best to a kept experiment and records the merge. */
function promote(tx: Writer, c: Campaign, exp: Experiment): { valBpb: number } {
  const before = parentMean(tx, c.name, c.bestCommit, exp.hardwareClass)
  tx.update(campaigns).set({ bestCommit: exp.commit }).where(eq(campaigns.name, c.name)).run()
  tx.insert(merges).values({
    id: newId('m'), campaign: c.name, experimentId: exp.id, bestBefore: c.bestCommit, bestAfter: exp.commit,
    valBefore: before ?? exp.valBpb!, valAfter: exp.valBpb!, delta: exp.valBpb! - (before ?? exp.valBpb!), sigma: null,
    samples: [exp.valBpb], verifiers: [], hardwareClass: exp.hardwareClass,
  }).run()
  logEvent(tx, c.name, 'best-changed', { from: c.bestCommit, to: exp.commit, experiment: exp.id, valBpb: exp.valBpb })
  c.bestCommit = exp.commit
  return { valBpb: exp.valBpb! }
}

export function parentMean(tx: Writer, campaign: string, commit: string, cls: string): number | null {
  const row = tx.select({ mean: sql<number | null>`avg(${measurements.valBpb})` }).from(measurements)
    .where(and(eq(measurements.campaign, campaign), eq(measurements.commit, commit), eq(measurements.hardwareClass, cls))).get()
  return row?.mean ?? null
}

/** Decides candidates that arrived before their parent's baseline on this class. */
function settlePending(tx: Writer, c: Campaign, cls: string): { id: string; status: string; moved: { valBpb: number } | null }[] {
  const pending = tx.select().from(experiments)
    .where(and(eq(experiments.campaign, c.name), eq(experiments.status, 'pending'), eq(experiments.hardwareClass, cls))).orderBy(experiments.createdAt).all()
  return pending.map(exp => {
    const verdict = judge(tx, c, exp, 'ok')
    tx.update(experiments).set({ status: verdict.status, decision: verdict.decision }).where(eq(experiments.id, exp.id)).run()
    logEvent(tx, c.name, 'experiment-decided', { experiment: exp.id, status: verdict.status, decision: verdict.decision })
    return { id: exp.id, status: verdict.status, moved: verdict.status === 'kept' ? promote(tx, c, exp) : null }
  })
}

import { and, eq, inArray } from 'drizzle-orm'
import { createHash } from 'node:crypto'
import { LIMITS, type Report, type ReportReply } from '@autoresearch-grid/shared'
import type { Ctx } from '../context.ts'
import { newId } from '../context.ts'
import { contributors, experiments, hypotheses, measurements, workUnits } from '../db/schema.ts'
import { logEvent, type Writer } from '../events/log.ts'
import { getCampaign, UserError, type Campaign } from '../campaigns/campaigns.ts'
import type { Worker } from '../workers/registry.ts'
import { addHypothesis } from '../hypotheses/add.ts'
import { applyDecision, decideCandidate, runProblem } from './judge.ts'
import { finishMerge, mergeStale, type MergeJob } from './merge.ts'
import { sourceOf } from './assign.ts'

export type Experiment = typeof experiments.$inferSelect

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

export interface Outcome {
  /** Candidates the ratchet accepted: the branch moves in a second step (merge.ts). */
  merges: MergeJob[]
  /** Promising candidates whose parent is no longer the best. */
  stale: Experiment[]
  decided: { id: string; status: string }[]
}

/**
 * Re-decides candidates that a new measurement may settle: those waiting for a baseline of the
 * measured commit, and the candidate a verification re-ran.
 */
function settle(tx: Writer, c: Campaign, candidates: Experiment[], now: number, out: Outcome): void {
  for (const exp of candidates) {
    const applied = applyDecision(tx, c, exp, decideCandidate(tx, c, exp), now)
    out.decided.push({ id: exp.id, status: applied.status })
    if (applied.merge) out.merges.push({ campaign: c.name, experiment: { ...exp, status: applied.status }, decision: applied.merge })
    if (applied.status === 'stale') out.stale.push(exp)
  }
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

  // Baselines and verifications measure a commit the coordinator chose: the worker must have run
  // exactly that code, and then no new commit is made.
  const measuring = unit.kind === 'baseline' ? unit.parentCommit : unit.kind === 'verify' ? unit.targetCommit : null
  const hash = sourceHash(r.source)
  if (measuring && hash !== sourceHash(await sourceOf(ctx, measuring, c.spec.editableFiles)))
    throw new UserError(`a ${unit.kind} unit must run the code it was given, unchanged`)
  const contributor = ctx.db.select().from(contributors).where(eq(contributors.id, worker.contributorId)).get()!
  const author = { name: contributor.name, email: contributor.email ?? `${contributor.id}@contributors.autoresearch-grid.local` }
  const commit = measuring ?? await ctx.git.commit({ files: r.source, parents: [unit.parentCommit], message: commitMessage(r, c), author })
  const linesDelta = measuring ? 0 : await ctx.git.linesDelta(unit.parentCommit, commit)
  // The diff on record is git's, not the worker's: rebases and reviews rely on it.
  const diff = measuring ? '' : (await ctx.git.diff(unit.parentCommit, commit)).slice(0, LIMITS.diffBytes)
  const id = newId('e')
  const now = ctx.now()

  const outcome = ctx.db.transaction(tx => {
    // Re-read inside the transaction: another report may have landed while git was writing.
    const fresh = tx.select().from(workUnits).where(eq(workUnits.id, unit.id)).get()!
    if (fresh.leaseToken !== r.leaseToken || fresh.state === 'done') return null
    const campaign = getCampaign({ db: tx as never }, c.name)!
    const problem = runProblem(campaign, r.status, r.metrics)
    const exp: Experiment = {
      id, unitId: unit.id, campaign: c.name, kind: unit.kind, workerId: worker.id, contributorId: worker.contributorId,
      hardwareClass: worker.hardwareClass, hypothesisId: unit.hypothesisId, parentCommit: unit.parentCommit, commit,
      description: r.description.slice(0, LIMITS.descriptionChars), diff, sourceHash: hash, linesDelta, metrics: r.metrics,
      valBpb: r.metrics?.val_bpb ?? null, status: problem?.status ?? (measuring ? 'measured' : 'pending'),
      decision: problem?.decision ?? (measuring ? `measured ${r.metrics!.val_bpb.toFixed(6)} on ${worker.hardwareClass}` : ''),
      logTail: r.logTail, agentNotes: r.agentNotes, timings: r.timings, createdAt: now,
    }
    tx.insert(experiments).values(exp).run()
    tx.update(workUnits).set({ state: 'done', updatedAt: now }).where(eq(workUnits.id, unit.id)).run()
    logEvent(tx, c.name, 'experiment', { experiment: id, worker: worker.id, kind: unit.kind, status: exp.status, valBpb: exp.valBpb })
    const out: Outcome = { merges: [], stale: [], decided: [{ id, status: exp.status }] }
    if (problem) {
      if (unit.hypothesisId) tx.update(hypotheses).set({ status: 'tested' }).where(eq(hypotheses.id, unit.hypothesisId)).run()
      return out
    }
    tx.insert(measurements).values({ campaign: c.name, commit, hardwareClass: worker.hardwareClass, valBpb: exp.valBpb!, experimentId: id,
      workerId: worker.id, kind: unit.kind, trainingSeconds: r.metrics!.training_seconds }).run()
    out.decided = []
    if (!measuring) settle(tx, campaign, [exp], now, out)
    else {
      const waiting = tx.select().from(experiments).where(and(eq(experiments.campaign, c.name), eq(experiments.status, 'pending'),
        eq(experiments.hardwareClass, worker.hardwareClass), inArray(experiments.kind, ['explore', 'rebase']))).all()
        .filter(e => (unit.kind === 'verify' ? e.id === unit.targetExperiment : e.parentCommit === commit))
      settle(tx, campaign, waiting, now, out)
      out.decided.unshift({ id, status: exp.status })
    }
    return out
  })
  if (!outcome) {
    const again = ctx.db.select().from(experiments).where(eq(experiments.unitId, unit.id)).get()
    if (again) return { experimentId: again.id, decision: again.decision, duplicate: true }
    throw new UserError(`work unit "${unit.id}" was re-assigned while your report was being stored`)
  }
  if (!measuring) await ctx.git.setRef(`refs/experiments/${id}`, commit)
  for (const job of outcome.merges) await finishMerge(ctx, job)
  for (const exp of outcome.stale) await mergeStale(ctx, exp)
  for (const f of r.followUps) {
    addHypothesis(ctx, c.name, { title: f.title, body: f.body, source: 'agent', author: worker.name, parentExperiment: id })
  }
  for (const d of outcome.decided) ctx.bus.emit({ type: 'experiment', campaign: c.name, experimentId: d.id, status: d.status })
  ctx.bus.emit({ type: 'unit-done', workerId: worker.id, unitId: unit.id })
  ctx.bus.emit({ type: 'work-available', campaign: c.name })
  const decision = ctx.db.select({ d: experiments.decision }).from(experiments).where(eq(experiments.id, id)).get()!.d
  return { experimentId: id, decision, duplicate: false }
}

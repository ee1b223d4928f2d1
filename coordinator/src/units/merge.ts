import { and, eq, inArray, notExists } from 'drizzle-orm'
import { CANDIDATE_KINDS, linesDelta as countLinesDelta, sourceHash } from '@autoresearch-grid/shared'
import type { Ctx } from '../context.ts'
import { newId } from '../context.ts'
import { campaigns, contributors, experiments, hypotheses, measurements, merges, workers, workUnits } from '../db/schema.ts'
import { logEvent } from '../events/log.ts'
import { getCampaign } from '../campaigns/campaigns.ts'
import { applyDecision, cancelRunningVerifications, closingReason, decideCandidate } from './judge.ts'
import { announceCancelled } from './report-outcome.ts'
import { sourceOf } from './source-cache.ts'
import { gateMerge } from '../review/gate.ts'
import type { Approval, MergeJob, MergeSteps } from '../review/rows.ts'
import { cancelVerifications, createUnit, recordDone } from './lifecycle.ts'

type Experiment = typeof experiments.$inferSelect
export type { MergeJob }

function author(ctx: Ctx, contributorId: string) {
  const c = ctx.db.select().from(contributors).where(eq(contributors.id, contributorId)).get()!
  return { name: c.name, email: c.email ?? `${c.id}@contributors.autoresearch-grid.local` }
}

/**
 * Second step of a merge, behind the review gate (review/gate.ts): a candidate the ratchet accepted
 * merges now only if its campaign's review is already satisfied (review `none`, or approved before
 * a crash); otherwise it waits as `awaiting-review`, and the approving verdict calls commitMerge.
 */
export async function finishMerge(ctx: Ctx, job: MergeJob): Promise<void> {
  const approval = gateMerge(ctx, job)
  if (approval) await commitMerge(ctx, job, approval)
}

/**
 * The merge itself: a commit on the campaign branch authored by the contributor, whose message
 * carries the evidence (val_bpb, Δ, σ, n, verifiers) and the review's approval; then the best
 * moves to it, if it is still the candidate's parent. If the best moved on meanwhile (as it may
 * while a candidate awaits review), the candidate goes the stale way.
 */
export async function commitMerge(ctx: Ctx, job: MergeJob, approval: Approval): Promise<void> {
  const exp = job.experiment
  const c = getCampaign(ctx, job.campaign)!
  if (c.bestCommit !== exp.parentCommit) return markStale(ctx, exp, 'the best moved on while it was being merged')
  const ev = job.decision.evidence
  const verifierNames = job.decision.verifierIds.map(id => ctx.db.select({ n: workers.name }).from(workers).where(eq(workers.id, id)).get()?.n ?? id)
  const message = `${exp.description}\n\nval_bpb: ${ev.candidateMean.toFixed(6)}\ndelta: ${ev.delta.toFixed(6)}\nsigma: ${ev.sigma.toFixed(6)}\n` +
    `n: ${ev.nC} (parent ${ev.nP})\nverifiers: ${verifierNames.join(', ') || 'none'}${job.decision.simplification ? '\nsimplification: yes' : ''}\n` +
    `${approval.trailer}\nexperiment: ${exp.id}\ncampaign: ${c.name}`
  const files = await sourceOf(ctx, exp.commit, c.spec.editableFiles)
  const commit = await ctx.git.commit({ files, parents: [c.bestCommit], message, author: author(ctx, exp.contributorId), date: ctx.now() })
  const moved = ctx.db.transaction(tx => {
    const now = getCampaign({ db: tx as never }, c.name)!
    if (now.bestCommit !== exp.parentCommit) return false
    tx.update(campaigns).set({ bestCommit: commit }).where(eq(campaigns.name, c.name)).run()
    tx.update(experiments).set({ status: 'kept', ...(approval.decision ? { decision: approval.decision } : {}) }).where(eq(experiments.id, exp.id)).run()
    tx.insert(merges).values({
      id: newId('m'), campaign: c.name, experimentId: exp.id, bestBefore: exp.parentCommit, bestAfter: commit, valBefore: ev.parentMean,
      valAfter: ev.candidateMean, delta: ev.delta, sigma: ev.sigma, samples: job.decision.samples, verifiers: job.decision.verifierIds,
      hardwareClass: exp.hardwareClass, reviewer: approval.reviewer, reviewReason: approval.reason,
    }).run()
    // The branch commit holds the candidate's exact source: its measurements are the new best's,
    // except the claims (the author's runs), which are no evidence about the new best either.
    for (const m of tx.select().from(measurements).where(and(eq(measurements.campaign, c.name), eq(measurements.commit, exp.commit),
      inArray(measurements.kind, ['baseline', 'verify']))).all()) {
      const { id: _id, ...rest } = m
      tx.insert(measurements).values({ ...rest, commit }).run()
    }
    logEvent(tx, c.name, 'best-changed', { from: exp.parentCommit, to: commit, experiment: exp.id, valBpb: ev.candidateMean, delta: ev.delta, reviewer: approval.reviewer })
    return true
  })
  if (!moved) return markStale(ctx, exp, 'the best moved on while it was being merged')
  await ctx.git.setRef(`refs/heads/${c.branch}`, commit)
  ctx.bus.emit({ type: 'best-changed', campaign: c.name, commit, valBpb: ev.candidateMean })
}

/** Why a candidate gone stale has its running verifications stopped, under its campaign's policy (null: they run on). */
const staleClosing = (ctx: Ctx, exp: Experiment): string | null => closingReason('stale', getCampaign(ctx, exp.campaign)!.spec.noise.policy)

/** A candidate accepted but not merged, the best having moved: the stale way, as a stale decision goes (judge.ts applyDecision). */
async function markStale(ctx: Ctx, exp: Experiment, why: string): Promise<void> {
  const closing = staleClosing(ctx, exp)
  const cancelled = ctx.db.transaction(tx => {
    tx.update(experiments).set({ status: 'stale', decision: `stale: ${why}` }).where(eq(experiments.id, exp.id)).run()
    return closing ? cancelRunningVerifications(tx, exp.campaign, exp, closing, ctx.now()) : []
  })
  announceCancelled(ctx, cancelled)
  await mergeStale(ctx, exp)
}

/**
 * A candidate closed outside a decision (its review rejected it, or, under `fixed`, superseded it
 * as stale): its verifications still running are cancelled and their workers told, as
 * applyDecision does for a decision (judge.ts closingReason says which runs are kept).
 */
function stopRunning(ctx: Ctx, exp: Experiment, why: string | null): void {
  if (!why) return
  announceCancelled(ctx, ctx.db.transaction(tx => cancelRunningVerifications(tx, exp.campaign, exp, why, ctx.now())))
}

/**
 * A promising candidate whose parent is no longer the best (DESIGN §7): merge its change onto the
 * best with a three-way merge of the editable files. Clean: the merged code becomes a new
 * candidate that other workers verify against the best. Conflict: a `rebase` unit asks an agent to
 * re-apply the idea on the best, with the candidate's diff as reference.
 */
export async function mergeStale(ctx: Ctx, exp: Experiment): Promise<void> {
  // The git work happens outside the transaction: if the best moves meanwhile, merge onto the new one.
  for (let attempt = 0; attempt < 5; attempt++) if (await mergeStaleOnce(ctx, exp)) break
  ctx.bus.emit({ type: 'work-available', campaign: exp.campaign })
}

/** One try of mergeStale against the best as it is now; false when the best moved under it. */
async function mergeStaleOnce(ctx: Ctx, exp: Experiment): Promise<boolean> {
  const c = getCampaign(ctx, exp.campaign)!
  const files = await ctx.git.mergeFiles(c.bestCommit, exp.commit, c.spec.editableFiles)
  const now = ctx.now()
  // The best holds the change already (another candidate made the same edit, or copied it, and
  // merged first): merged onto it, it would be a candidate with no change, which noise alone could
  // merge (docs/RATCHET.md, rule 0; test/hostile/copied-change.test.ts). It is closed as such.
  if (files && sourceHash(files) === sourceHash(await sourceOf(ctx, c.bestCommit, c.spec.editableFiles))) return closeAsHeld(ctx, exp, c.bestCommit, now)
  if (files) {
    const message = `${exp.description}\n\nthree-way merge of experiment ${exp.id} onto ${c.bestCommit.slice(0, 10)}\ncampaign: ${c.name}`
    const commit = await ctx.git.commit({ files, parents: [c.bestCommit, exp.commit], message, author: author(ctx, exp.contributorId), date: now })
    const diff = await ctx.git.changes(commit, c.bestCommit)
    const linesDelta = countLinesDelta(await sourceOf(ctx, c.bestCommit, c.spec.editableFiles), files)
    const id = newId('e')
    const stored = ctx.db.transaction(tx => {
      const campaign = getCampaign({ db: tx as never }, c.name)!
      if (campaign.bestCommit !== c.bestCommit) return false
      // The coordinator did this rebase itself; the unit row records it, done, for the experiment.
      const unitId = recordDone(tx, { kind: 'rebase', campaign: c.name, hypothesisId: exp.hypothesisId, parentCommit: c.bestCommit, targetExperiment: exp.id },
        exp.workerId, now).id
      const merged: Experiment = { ...exp, id, unitId, kind: 'rebase', parentCommit: c.bestCommit, commit, diff, linesDelta, metrics: null, valBpb: null,
        status: 'pending', description: `${exp.description} (merged onto the new best)`.slice(0, 300), decision: '', reason: null, logTail: '', agentNotes: `three-way merge of ${exp.id}`, createdAt: now }
      tx.insert(experiments).values(merged).run()
      logEvent(tx, c.name, 'merged-onto-best', { experiment: exp.id, merged: id, commit })
      applyDecision(tx, campaign, merged, decideCandidate(tx, campaign, merged), now)
      return true
    })
    if (!stored) return false
    ctx.git.setRefSoon(`refs/experiments/${id}`, commit)
    return true
  }
  return ctx.db.transaction(tx => {
    if (getCampaign({ db: tx as never }, c.name)!.bestCommit !== c.bestCommit) return false
    const pending = tx.select().from(workUnits).where(and(eq(workUnits.targetExperiment, exp.id), eq(workUnits.kind, 'rebase'), inArray(workUnits.state, ['queued', 'leased']))).get()
    if (pending) return true
    createUnit(tx, { kind: 'rebase', campaign: c.name, hypothesisId: exp.hypothesisId, parentCommit: c.bestCommit, targetExperiment: exp.id }, now)
    logEvent(tx, c.name, 'rebase-queued', { experiment: exp.id, onto: c.bestCommit })
    return true
  })
}

/** A stale candidate whose change the best (`best`) already holds: discarded as `no-change`, its verifications ended. */
function closeAsHeld(ctx: Ctx, exp: Experiment, best: string, now: number): boolean {
  const stored = ctx.db.transaction(tx => {
    if (getCampaign({ db: tx as never }, exp.campaign)!.bestCommit !== best) return null
    const decision = `discarded: no change: its change is already in the best ${best.slice(0, 10)} (the same edit merged first), so there is nothing to carry onto it`
    tx.update(experiments).set({ status: 'discarded', reason: 'no-change', decision }).where(eq(experiments.id, exp.id)).run()
    if (exp.hypothesisId) tx.update(hypotheses).set({ status: 'tested' }).where(and(eq(hypotheses.id, exp.hypothesisId), inArray(hypotheses.status, ['open', 'in-progress']))).run()
    cancelVerifications(tx, exp.id, now)
    logEvent(tx, exp.campaign, 'decision', { experiment: exp.id, kind: 'discard', message: decision })
    return cancelRunningVerifications(tx, exp.campaign, exp, 'discarded', now)
  })
  if (stored === null) return false
  announceCancelled(ctx, stored)
  return true
}

/**
 * After a crash between the steps of a merge: finish what was accepted, then carry every stale
 * candidate that has no follow-up yet onto the best (a crash after the report's transaction but
 * before `mergeStale` leaves one behind, and nothing else would ever revisit it).
 */
export async function recoverMerges(ctx: Ctx): Promise<void> {
  for (const exp of ctx.db.select().from(experiments).where(eq(experiments.status, 'merging')).all()) {
    const c = getCampaign(ctx, exp.campaign)!
    const d = decideCandidate(ctx.db, c, exp)
    if (d.kind === 'merge') await finishMerge(ctx, { campaign: c.name, experiment: exp, decision: d })
    else announceCancelled(ctx, ctx.db.transaction(tx => applyDecision(tx, c, exp, d, ctx.now())).cancelled)
  }
  for (const exp of staleWithoutFollowUp(ctx)) await mergeStale(ctx, exp)
}

/**
 * Stale candidates that were never carried onto a newer best: neither a three-way merge (recorded
 * as a done `rebase` unit targeting them) nor a rebase unit exists for them.
 */
export function staleWithoutFollowUp(ctx: Pick<Ctx, 'db'>): Experiment[] {
  const followUp = ctx.db.select({ id: workUnits.id }).from(workUnits)
    .where(and(eq(workUnits.targetExperiment, experiments.id), eq(workUnits.kind, 'rebase')))
  return ctx.db.select().from(experiments)
    .where(and(eq(experiments.status, 'stale'), inArray(experiments.kind, [...CANDIDATE_KINDS]), notExists(followUp))).all()
}

/** What a review's outcome carries on with (review/rows.ts MergeSteps): the merge verbs above. */
export const MERGE_STEPS: MergeSteps = {
  commit: commitMerge,
  stale: async (ctx, exp) => {
    stopRunning(ctx, exp, staleClosing(ctx, exp))
    await mergeStale(ctx, exp)
  },
  closed: (ctx, exp, why) => stopRunning(ctx, exp, why),
}

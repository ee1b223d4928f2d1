import { and, eq, inArray, sql } from 'drizzle-orm'
import { LIMITS, sourceHash, type Report, type ReportReply, type SourceFiles, CANDIDATE_KINDS, linesDelta as countLinesDelta } from '@autoresearch-grid/shared'
import type { Ctx } from '../context.ts'
import { newId } from '../context.ts'
import { contributors, experiments, measurements, merges } from '../db/schema.ts'
import { logEvent } from '../events/log.ts'
import type { Writer } from '../db/open.ts'
import { prepared } from '../db/prepared.ts'
import { getCampaign, type Campaign } from '../campaigns/campaigns.ts'
import { UserError } from '../errors.ts'
import type { Worker } from '../workers/registry.ts'
import { applyDecision, decideCandidate, runProblem, type CancelledRun } from './judge.ts'
import { finishMerge, mergeStale, type MergeJob } from './merge.ts'
import { patchOf } from '../git/patch.ts'
import { sourceOf } from './source-cache.ts'
import { ingestReuse } from './reuse.ts'
import { retryFailedRebase } from './rebase-retry.ts'
import { afterFailedTry } from './hypothesis-retry.ts'
import { takeReport } from './report-pace.ts'
import { crashPoint } from '../faults/crash-point.ts'
import { redactSecrets } from '../auth/redact.ts'
import { getUnit, tryCompleteUnit, type Unit } from './lifecycle.ts'
import { announceCancelled, announceReport, refusedReply } from './report-outcome.ts'
import { step } from '../trace/steps.ts'
import { recordVerification } from './reciprocity.ts'
import { carriesChange } from './rebase-content.ts'

export type Experiment = typeof experiments.$inferSelect

const p = sql.placeholder
const EXPERIMENT_COLUMNS = ['id', 'unitId', 'campaign', 'kind', 'workerId', 'contributorId', 'hardwareClass', 'hypothesisId', 'parentCommit', 'commit', 'description',
  'diff', 'sourceHash', 'linesDelta', 'metrics', 'valBpb', 'status', 'decision', 'reason', 'logTail', 'agentNotes', 'timings', 'carriesOrigin', 'createdAt'] as const satisfies (keyof Experiment)[]
/** Every report runs these: prepared once (db/prepared.ts). */
const q = prepared(db => ({
  ofUnit: db.select().from(experiments).where(eq(experiments.unitId, p('unit'))).prepare(),
  contributor: db.select().from(contributors).where(eq(contributors.id, p('id'))).prepare(),
  // JSON columns take JSON text: through a bare placeholder drizzle would store null as the text "null".
  insert: db.insert(experiments).values(Object.fromEntries(EXPERIMENT_COLUMNS.map(k => [k, k === 'metrics' || k === 'timings' ? sql`${p(k)}` : p(k)])) as never).prepare(),
  measure: db.insert(measurements).values({ campaign: p('campaign'), commit: p('commit'), hardwareClass: p('cls'), valBpb: p('valBpb'), experimentId: p('experiment'),
    workerId: p('worker'), kind: p('kind'), trainingSeconds: p('seconds') }).prepare(),
  candidate: db.select().from(experiments).where(and(eq(experiments.id, p('id')), eq(experiments.status, 'pending'), eq(experiments.hardwareClass, p('cls')),
    inArray(experiments.kind, [...CANDIDATE_KINDS]))).prepare(),
  // A classless verification (the pooled policy) settles its candidate whatever the worker's class.
  candidateAnyClass: db.select().from(experiments).where(and(eq(experiments.id, p('id')), eq(experiments.status, 'pending'),
    inArray(experiments.kind, [...CANDIDATE_KINDS]))).prepare(),
  awaitingBaseline: db.select().from(experiments).where(and(eq(experiments.campaign, p('campaign')), eq(experiments.parentCommit, p('commit')),
    eq(experiments.status, 'pending'), eq(experiments.hardwareClass, p('cls')), inArray(experiments.kind, [...CANDIDATE_KINDS]))).prepare(),
  decision: db.select({ d: experiments.decision }).from(experiments).where(eq(experiments.id, p('id'))).prepare(),
  outcome: db.select({ status: experiments.status, reason: experiments.reason }).from(experiments).where(eq(experiments.id, p('id'))).prepare(),
  sameOnParent: sameOnParentQuery(db).prepare(),
  mergedAs: db.select({ commit: merges.bestAfter }).from(merges).where(eq(merges.experimentId, p('id'))).prepare(),
  origin: db.select({ commit: experiments.commit, parentCommit: experiments.parentCommit }).from(experiments).where(eq(experiments.id, p('id'))).prepare(),
}))

/**
 * A live candidate of the same code on the same parent, found through `experiments_source` (a
 * source hash matches a handful of rows). The unary `+` keeps SQLite's planner off
 * `experiments_parent (campaign, parent_commit)`, which it prefers for its two equal columns and which
 * visits every experiment ever tried on the parent: 18 % of the coordinator's profile in
 * bench/coordinator/ops.ts, growing for as long as the best does not move (docs/PERFORMANCE.md,
 * "Twelfth pass"; test/db/indexes.test.ts checks the plan).
 */
export const sameOnParentQuery = (db: Writer) => db.select({ id: experiments.id, commit: experiments.commit }).from(experiments).where(and(
  eq(experiments.sourceHash, p('hash')), eq(sql`+${experiments.campaign}`, p('campaign')), eq(sql`+${experiments.parentCommit}`, p('parent')),
  inArray(experiments.kind, [...CANDIDATE_KINDS]), inArray(experiments.status, [...LIVE_CANDIDATE]))).limit(1)

/** Candidates still in the race: a copy of one is no candidate of its own (storeCode). */
const LIVE_CANDIDATE = ['pending', 'stale', 'merging', 'awaiting-review', 'kept'] as const

/** Defined in shared/ (the worker asks `worker.known` with the same hash); re-exported for tests. */
export { sourceHash }

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
  /** Verifications of candidates closed here that workers were running: told after the commit. */
  cancelled: CancelledRun[]
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
    out.cancelled.push(...applied.cancelled)
  }
}

/**
 * Takes a worker's result: stores the trained source as a commit (under refs/experiments/<id> once
 * recorded), records the experiment and its measurement, lets the ratchet decide, and moves the campaign's
 * best when it says so. Idempotent by unit id + lease token: a repeated report gets the first
 * answer back. Everything about one report lands in one transaction.
 */
export async function ingestReport(ctx: Ctx, worker: Worker, r: Report): Promise<ReportReply> {
  const checked = checkReport(ctx, worker, r)
  if ('reply' in checked) return checked.reply
  const { unit, c } = checked
  // Every report is a row for good (a crash's log tail and notes, ~20 KiB; a candidate's commit and
  // diff): at most what real work could report (units/report-pace.ts).
  takeReport(ctx, worker.contributorId, c)
  if (r.reused) return ingestReuse(ctx, worker, unit, c, { ...r, reused: r.reused })
  const run = await storeCode(ctx, worker, unit, c, r)
  step(worker.id, 'stored')
  const outcome = ctx.db.transaction(tx => recordRun(tx, worker, unit, c, r, run))
  step(worker.id, 'recorded')
  if (!run.measuring) crashPoint('experiment-recorded')
  if (!outcome) return refusedReply(ctx, unit.id)
  announceCancelled(ctx, outcome.cancelled)
  // The experiment's ref after its transaction, written with the others of the moment (git/ref-batch.ts):
  // nothing reads it at once (every reader takes the commit from the database), and a crash before it
  // is written leaves a recorded experiment whose ref restoreExperimentRefs puts back at start. The
  // commit it names is on disk already (storeCode), so the answer below promises nothing unwritten.
  if (!run.measuring) ctx.git.setRefSoon(`refs/experiments/${run.id}`, run.commit)
  for (const job of outcome.merges) await finishMerge(ctx, job)
  for (const exp of outcome.stale) await mergeStale(ctx, exp)
  announceReport(ctx, worker, c, r, run.id, outcome.decided)
  step(worker.id, 'announced')
  const decision = q(ctx.db).decision.get({ id: run.id })!.d
  return { experimentId: run.id, decision, duplicate: false }
}

/**
 * A report's unit and campaign, if the report may be stored; the first answer, if it was stored
 * already; a UserError saying why not otherwise (checked again, for races, in the transaction).
 */
function checkReport(ctx: Ctx, worker: Worker, r: Report): { reply: ReportReply } | { unit: Unit; c: Campaign } {
  const unit = getUnit(ctx.db, r.unitId)
  if (!unit) throw new UserError(`unknown work unit "${r.unitId}"`)
  const previous = q(ctx.db).ofUnit.get({ unit: unit.id })
  if (previous) {
    if (previous.workerId !== worker.id) throw new UserError(`work unit "${unit.id}" was already reported by another worker`)
    return { reply: { experimentId: previous.id, decision: previous.decision, duplicate: true } }
  }
  // A worker's class is what its latest hello said. Handed out for one class (a baseline, a
  // verification), a unit's run counts only there: reported from another, a contributor that took a
  // quiet class's baselines (its turn there) put them on a busy one (test/hostile/class-switch.test.ts).
  if (unit.hardwareClass !== null && unit.hardwareClass !== worker.hardwareClass)
    throw new UserError(`work unit "${unit.id}" was handed out for hardware class ${unit.hardwareClass}, and worker "${worker.name}" now registers as ${worker.hardwareClass} ` +
      '(a hello since named other hardware): a run counts only on the class it was handed out for; drop this unit, and take new work as the worker you are now')
  if (unit.leaseToken !== r.leaseToken) throw new UserError(`work unit "${unit.id}" was re-assigned after your lease ran out; this result is not needed`)
  if (unit.state === 'leased' && unit.workerId !== worker.id) throw new UserError(`work unit "${unit.id}" is leased to another worker`)
  if (unit.state === 'cancelled') throw new UserError(`work unit "${unit.id}" was cancelled`)
  const c = getCampaign(ctx, unit.campaign)!
  const extra = Object.keys(r.source).filter(f => !c.spec.editableFiles.includes(f))
  if (extra.length) throw new UserError(`only ${c.spec.editableFiles.join(', ')} may change; the report also carries ${extra.join(', ')}`)
  const missing = c.spec.editableFiles.filter(f => !(f in r.source))
  if (missing.length) throw new UserError(`the report lacks ${missing.join(', ')}`)
  return { unit, c }
}

/** A run's code as stored before its transaction: the commit it measured, and the experiment's id. */
interface StoredRun {
  id: string
  /** The commit a baseline or verification measured (the coordinator's, no new commit); null for a candidate. */
  measuring: string | null
  /** A candidate whose code is its parent's, byte for byte: no new commit, and nothing to decide. */
  unchanged: boolean
  /** A candidate whose code is a live candidate's on the same parent: that one's id; no new commit, nothing to decide. */
  copyOf: string | null
  commit: string
  hash: string
  linesDelta: number
  diff: string
  /** A rebase: whether its code is its origin's change re-applied (units/rebase-content.ts); null otherwise. */
  carriesOrigin: boolean | null
  now: number
}

async function storeCode(ctx: Ctx, worker: Worker, unit: Unit, c: Campaign, r: Report): Promise<StoredRun> {
  // Baselines and verifications measure a commit the coordinator chose: the worker must have run
  // exactly that code, and then no new commit is made.
  const measuring = unit.kind === 'baseline' ? unit.parentCommit : unit.kind === 'verify' ? unit.targetCommit : null
  const hash = sourceHash(r.source)
  if (measuring && hash !== sourceHash(await sourceOf(ctx, measuring, c.spec.editableFiles)))
    throw new UserError(`a ${unit.kind} unit must run the code it was given, unchanged`)
  const contributor = q(ctx.db).contributor.get({ id: worker.contributorId })!
  const author = { name: contributor.name, email: contributor.email ?? `${contributor.id}@contributors.autoresearch-grid.local` }
  const parent = measuring ? null : await sourceOf(ctx, unit.parentCommit, c.spec.editableFiles)
  // An exploration that changed nothing is a run of its parent, not a candidate: as a candidate,
  // noise alone could merge it (a lucky run against an unlucky baseline) and move the best to the
  // same code with a lower number, which every real improvement after it would then have to beat.
  const unchanged = parent !== null && sourceHash(parent) === hash
  // The same code as a candidate still in the race on the same parent is a copy, not a second
  // candidate: the code of every candidate is public, and a copy reported by another contributor
  // was judged on its own, could merge first under its name, and left the original to be carried
  // onto a best that already held it (test/hostile/copied-change.test.ts).
  const copy = measuring || unchanged ? undefined : q(ctx.db).sameOnParent.get({ hash, campaign: c.name, parent: unit.parentCommit })
  const commit = measuring ?? (unchanged ? unit.parentCommit : copy ? copy.commit : await ctx.git.commit({ files: r.source, parents: [unit.parentCommit], message: commitMessage(r, c), author }, { staged: true }))
  // Counted from the two sources, exactly as git's numstat would (shared/src/lines-delta.ts): no git run.
  const linesDelta = parent === null ? 0 : countLinesDelta(parent, r.source)
  // The diff on record is the coordinator's, not the worker's: rebases and reviews rely on it. It is
  // computed here from the parent's files and the committed ones (git/patch.ts: 0.1-0.2 ms, against a
  // round trip to diff-tree that cost ~0.6 ms here and 1.1-1.4 ms in git), by git where that is
  // too long for the event loop or a file is binary.
  const diff = parent === null || unchanged || copy ? '' : (patchOf(parent, r.source) ?? await ctx.git.changes(commit)).slice(0, LIMITS.diffBytes)
  const carries = unit.kind === 'rebase' && !unchanged && !copy ? await carriesOrigin(ctx, unit, c, parent!, r.source) : null
  const id = newId('e')
  const now = ctx.now()
  return { id, measuring, unchanged, copyOf: copy?.id ?? null, commit, hash, linesDelta, diff, carriesOrigin: carries, now }
}

/** Whether a rebase's code re-applies its origin's change on the unit's parent (units/rebase-content.ts). */
async function carriesOrigin(ctx: Ctx, unit: Unit, c: Campaign, parent: SourceFiles, result: SourceFiles): Promise<boolean> {
  const origin = unit.targetExperiment ? q(ctx.db).origin.get({ id: unit.targetExperiment }) : undefined
  if (!origin) return false
  const [base, change] = await Promise.all([sourceOf(ctx, origin.parentCommit, c.spec.editableFiles), sourceOf(ctx, origin.commit, c.spec.editableFiles)])
  return carriesChange(base, change, parent, result)
}

/**
 * The report's transaction: completes the unit (null, storing nothing, if another report landed or
 * the unit moved on while git was writing), records the experiment and its measurement, and
 * re-decides what the measurement may settle.
 */
function recordRun(tx: Writer, worker: Worker, unit: Unit, c: Campaign, r: Report, run: StoredRun): Outcome | null {
  if (!tryCompleteUnit(tx, unit.id, r.leaseToken, run.now)) return null
  const campaign = getCampaign({ db: tx as never }, c.name)!
  const sanity = runProblem(campaign, r.status, r.metrics, r.rejection)
  // Unchanged code that ran (or was not trained at all: the worker's agent changed nothing, and it
  // reports no metrics) is no candidate; a number that fails the sanity checks is not kept with it.
  const problem = run.unchanged && r.status === 'ok' ? noChange(c, unit) : run.copyOf ? copied(run.copyOf) : sanity
  // An unchanged run's number stays in its metrics, not as a candidate's val_bpb: rows with one count
  // as decided candidates in the observed rate of gains (units/sequential-inputs.ts), and such
  // reports cost nothing to send (test/hostile/unchanged-rate.test.ts).
  const valBpb = run.unchanged || run.copyOf ? null : r.metrics?.val_bpb ?? null
  const exp: Experiment = {
    id: run.id, unitId: unit.id, campaign: c.name, kind: unit.kind, workerId: worker.id, contributorId: worker.contributorId,
    hardwareClass: worker.hardwareClass, hypothesisId: unit.hypothesisId, parentCommit: unit.parentCommit, commit: run.commit,
    description: r.description.slice(0, LIMITS.descriptionChars), diff: run.diff, sourceHash: run.hash, linesDelta: run.linesDelta, metrics: r.metrics,
    valBpb, status: problem?.status ?? (run.measuring ? 'measured' : 'pending'),
    decision: problem?.decision ?? (run.measuring ? `measured ${r.metrics!.val_bpb.toFixed(6)} on ${worker.hardwareClass}` : ''), reason: problem?.reason ?? null,
    logTail: redactSecrets(r.logTail), agentNotes: r.agentNotes, timings: r.timings, carriesOrigin: run.carriesOrigin, createdAt: run.now,
  }
  const json = (v: unknown) => (v === null || v === undefined ? null : JSON.stringify(v))
  q(tx).insert.run({ ...exp, metrics: json(exp.metrics), timings: json(exp.timings) })
  logEvent(tx, c.name, 'experiment', { experiment: run.id, worker: worker.id, kind: unit.kind, status: exp.status, valBpb: exp.valBpb })
  const out: Outcome = { merges: [], stale: [], decided: [{ id: run.id, status: exp.status }], cancelled: [] }
  if (problem) {
    if (unit.hypothesisId) afterFailedTry(tx, unit.hypothesisId)
    // A verification that crashed or was refused counts against its candidate, which is re-decided
    // now: it gets a replacement run, or is rejected once it failed for enough others. Returning
    // before this left the candidate waiting for a run that would never come.
    if (unit.kind === 'verify') settle(tx, campaign, verified(tx, unit, worker.hardwareClass), run.now, out)
    retryFailedRebase(tx, campaign, unit, { status: exp.status, reason: exp.reason, carriesOrigin: run.carriesOrigin }, run.now)
    return out
  }
  const measured = { campaign: c.name, cls: worker.hardwareClass, valBpb: exp.valBpb!, experiment: run.id, worker: worker.id, kind: unit.kind, seconds: r.metrics!.training_seconds }
  q(tx).measure.run({ ...measured, commit: run.commit })
  if (unit.kind === 'verify') recordVerification(tx, c.name, worker.contributorId, unit.targetExperiment)
  out.decided = []
  if (!run.measuring) {
    settle(tx, campaign, [exp], run.now, out)
    const decided = q(tx).outcome.get({ id: run.id })!
    retryFailedRebase(tx, campaign, unit, { ...decided, carriesOrigin: run.carriesOrigin }, run.now)
  } else {
    // A verification settles its own candidate; a baseline those waiting on its commit (indexed lookups either way).
    const waiting = unit.kind === 'verify'
      ? verified(tx, unit, worker.hardwareClass)
      : q(tx).awaitingBaseline.all({ campaign: c.name, commit: run.commit, cls: worker.hardwareClass })
    // A verification of a candidate merged meanwhile (no longer pending, so only then asked) measured
    // the branch commit's code too (merge.ts commitMerge copies the runs a candidate had when it
    // merged onto the commit it made): it counts as a run of that commit, a parent run for the
    // candidates on the new best, as if it had come before the merge. Either this transaction or the
    // merge's sees the run, never both.
    const merged = unit.kind === 'verify' && waiting.length === 0 && unit.targetExperiment ? q(tx).mergedAs.get({ id: unit.targetExperiment }) : undefined
    if (merged) q(tx).measure.run({ ...measured, commit: merged.commit })
    settle(tx, campaign, waiting, run.now, out)
    out.decided.unshift({ id: run.id, status: exp.status })
  }
  return out
}

/** The pending candidate a verification unit is of: on the worker's class, or on any class for a classless (pooled) one. */
function verified(tx: Writer, unit: Unit, cls: string): Experiment[] {
  return unit.hardwareClass === null ? q(tx).candidateAnyClass.all({ id: unit.targetExperiment ?? '' }) : q(tx).candidate.all({ id: unit.targetExperiment ?? '', cls })
}

/** What a candidate whose code is a live candidate's on the same parent gets (storeCode): on record, never a candidate. */
function copied(of: string): { status: Experiment['status']; decision: string; reason: string } {
  return {
    status: 'discarded',
    reason: 'duplicate',
    decision: `discarded: the same code as candidate ${of} on the same parent, which is still in the race: it is judged there; this run is on record but is not evidence`,
  }
}

/** What a candidate whose code is its parent's gets (storeCode): on record, never a candidate. */
function noChange(c: Campaign, unit: Unit): { status: Experiment['status']; decision: string; reason: string } {
  return {
    status: 'discarded',
    reason: 'no-change',
    decision: `discarded: no change: ${c.spec.editableFiles.join(', ')} is identical to its parent ${unit.parentCommit.slice(0, 10)}, so there is nothing to merge; ` +
      'the run stays on record but is not evidence (a commit\'s evidence is its baselines and verifications)',
  }
}

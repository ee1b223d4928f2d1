import { and, eq, isNotNull, sql } from 'drizzle-orm'
import { LIMITS, sourceHash, type Report, type ReportReply, isCandidate, linesDelta as countLinesDelta } from '@autoresearch-grid/shared'
import type { Ctx } from '../context.ts'
import { newId } from '../context.ts'
import { experiments } from '../db/schema.ts'
import type { Writer } from '../db/open.ts'
import { prepared } from '../db/prepared.ts'
import { logEvent } from '../events/log.ts'
import type { Campaign } from '../campaigns/campaigns.ts'
import { UserError } from '../errors.ts'
import type { Worker } from '../workers/registry.ts'
import { sourceOf } from './source-cache.ts'
import { tryCompleteUnit, type Unit } from './lifecycle.ts'
import { announceReport, refusedReply } from './report-outcome.ts'
import { retryFailedRebase } from './rebase-retry.ts'
import { afterFailedTry } from './hypothesis-retry.ts'

/**
 * The earliest measured run of this exact source on a class in a campaign (`worker.known`), found
 * through `experiments_source (source_hash, hardware_class)`. The unary `+` keeps SQLite's planner off
 * `experiments_campaign`, which it took for the campaign's equality and the order by creation, and
 * which read every experiment of the campaign on each call: a worker asks before each run it trains
 * (docs/PERFORMANCE.md, "Twelfth pass"; test/db/indexes.test.ts checks the plan).
 */
export const knownRunQuery = (db: Writer) => db.select().from(experiments).where(and(eq(experiments.sourceHash, sql.placeholder('hash')),
  eq(experiments.hardwareClass, sql.placeholder('cls')), eq(sql`+${experiments.campaign}`, sql.placeholder('campaign')), isNotNull(experiments.valBpb)))
  .orderBy(experiments.createdAt).limit(1)
const q = prepared(db => ({ known: knownRunQuery(db).prepare() }))

/** What `worker.known` answers: the earlier measurement of this source on the class, if any. */
export function knownRun(ctx: Pick<Ctx, 'db'>, campaign: string, hash: string, hardwareClass: string) {
  return q(ctx.db).known.get({ campaign, hash, cls: hardwareClass })
}

/**
 * A report that says "not trained: `worker.known` answered that this exact source was already
 * measured on my class" (DESIGN §8: an identical train.py is never trained twice). The unit gets
 * its experiment, pointing at the earlier commit, with no new measurement: the earlier one stands
 * and the ratchet has nothing new to decide. Only candidates can be reused; baselines and
 * verifications exist to measure again. The row keeps no diff: it copied the earlier one's (up to
 * 256 KiB) when both had the same parent, and reuses were not paced, so one measured candidate
 * reported again as a reuse of itself stored 250 KB a row, as fast as units came
 * (test/hostile/row-flood.test.ts). The dashboard reads its change from git (the same commit).
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
    if (!tryCompleteUnit(tx, unit.id, r.leaseToken, now)) return false
    tx.insert(experiments).values({
      id, unitId: unit.id, campaign: c.name, kind: unit.kind, workerId: worker.id, contributorId: worker.contributorId, hardwareClass: worker.hardwareClass,
      hypothesisId: unit.hypothesisId, parentCommit: unit.parentCommit, commit: earlier.commit, description: r.description.slice(0, LIMITS.descriptionChars),
      diff: '', sourceHash: hash, linesDelta, metrics: null, valBpb: null, status: 'discarded',
      reason: 'reused', decision, logTail: '', agentNotes: r.agentNotes, timings: r.timings, createdAt: now,
    }).run()
    // A rebase of someone else's idea not trained is no verdict on the idea (units/rebase-retry.ts).
    retryFailedRebase(tx, c, unit, { status: 'discarded', reason: 'reused' }, now)
    if (unit.hypothesisId) afterFailedTry(tx, unit.hypothesisId)
    logEvent(tx, c.name, 'experiment', { experiment: id, worker: worker.id, kind: unit.kind, status: 'discarded', valBpb: null, reused: earlier.id })
    return true
  })
  if (!stored) return refusedReply(ctx, unit.id)
  ctx.git.setRefSoon(`refs/experiments/${id}`, earlier.commit)
  announceReport(ctx, worker, c, r, id, [{ id, status: 'discarded' }])
  return { experimentId: id, decision, duplicate: false }
}

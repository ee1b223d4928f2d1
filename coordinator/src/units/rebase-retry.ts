import { and, eq, inArray, sql } from 'drizzle-orm'
import { FAILED_STATUSES } from '@autoresearch-grid/shared'
import type { Writer } from '../db/open.ts'
import { prepared } from '../db/prepared.ts'
import { experiments, workUnits } from '../db/schema.ts'
import { logEvent } from '../events/log.ts'
import type { Campaign } from '../campaigns/campaigns.ts'
import { createUnit, type Unit } from './lifecycle.ts'

/**
 * A rebase re-applies someone else's idea on the best (units/merge.ts mergeStale), and any
 * contributor's worker may take it. Its report was the idea's only follow-up: a hostile worker
 * took a rival's rebase and reported a crash, or a number that failed the screen, at once (no
 * training needed), and the idea, promising on its own parent, was never tried on the best again
 * (test/hostile/rebase-veto.test.ts). So a rebase that failed on its worker's word alone is queued
 * again, closed to the contributors that failed it, until FAILED_REBASE_CONTRIBUTORS of them (or
 * FAILED_REBASE_RUNS runs in all) did, as a verification that fails elsewhere is (ratchet/decide.ts).
 */
export const FAILED_REBASE_CONTRIBUTORS = 2
export const FAILED_REBASE_RUNS = 3

/**
 * Outcomes decided on the rebasing worker's word alone: no run (a crash, a refusal, a number that
 * failed the sanity checks), no change, a reuse of code measured before (units/reuse.ts: not
 * trained), a copy of a live candidate (units/report.ts), or its own claim short of the screen
 * ('not-promising').
 */
const ON_ITS_WORD = ['no-change', 'reused', 'duplicate', 'not-promising']
export function failedOnItsWord(status: string, reason: string | null): boolean {
  return (FAILED_STATUSES as readonly string[]).includes(status) || (status === 'discarded' && ON_ITS_WORD.includes(reason ?? ''))
}

const p = sql.placeholder
const q = prepared(db => ({
  // The rebases of an origin that were reported, with their outcome and contributor.
  reported: db.select({ contributorId: experiments.contributorId, status: experiments.status, reason: experiments.reason, carriesOrigin: experiments.carriesOrigin }).from(workUnits)
    .innerJoin(experiments, eq(experiments.unitId, workUnits.id))
    .where(and(eq(workUnits.targetExperiment, p('origin')), eq(workUnits.kind, 'rebase'))).prepare(),
  open: db.select({ id: workUnits.id }).from(workUnits)
    .where(and(eq(workUnits.targetExperiment, p('origin')), eq(workUnits.kind, 'rebase'), inArray(workUnits.state, ['queued', 'leased']))).prepare(),
}))

/**
 * After a rebase unit's report was recorded (in its transaction): if it failed on its worker's
 * word, queue another rebase of the same origin on the current best for a contributor that has not
 * failed it, unless enough have. Returns whether one was queued.
 */
export function retryFailedRebase(tx: Writer, c: Campaign, unit: Unit, outcome: { status: string; reason: string | null; carriesOrigin?: boolean | null }, now: number): boolean {
  // A rebase whose code is not its origin's change (units/rebase-content.ts) did not re-apply it:
  // a change of its own reported for a rival's rebase left the rival's idea untried on the best.
  const failed = (o: { status: string; reason: string | null; carriesOrigin?: boolean | null }) => o.carriesOrigin === false || failedOnItsWord(o.status, o.reason)
  if (unit.kind !== 'rebase' || !unit.targetExperiment || !failed(outcome)) return false
  const origin = unit.targetExperiment
  if (q(tx).open.get({ origin })) return false
  const failures = q(tx).reported.all({ origin }).filter(failed)
  const by = [...new Set(failures.map(r => r.contributorId))]
  if (by.length >= FAILED_REBASE_CONTRIBUTORS || failures.length >= FAILED_REBASE_RUNS) {
    logEvent(tx, c.name, 'rebase-abandoned', { experiment: origin, failedBy: by, runs: failures.length })
    return false
  }
  const again = createUnit(tx, { kind: 'rebase', campaign: c.name, hypothesisId: unit.hypothesisId, parentCommit: c.bestCommit, targetExperiment: origin, excludedContributors: by }, now)
  logEvent(tx, c.name, 'rebase-queued', { experiment: origin, onto: c.bestCommit, unit: again.id, after: unit.id, excluded: by })
  return true
}

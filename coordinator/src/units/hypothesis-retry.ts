import { and, eq, inArray, sql } from 'drizzle-orm'
import type { Writer } from '../db/open.ts'
import { prepared } from '../db/prepared.ts'
import { experiments, hypotheses, workUnits } from '../db/schema.ts'
import { FAILED_REBASE_CONTRIBUTORS, failedOnItsWord } from './rebase-retry.ts'

/**
 * An exploration of a hypothesis that failed on its worker's word alone (no run, a refusal, no
 * change, a reuse of code measured before: units/rebase-retry.ts `failedOnItsWord`) tried nothing,
 * and marked the hypothesis `tested` for good: a contributor with an idle worker took the
 * maintainer's top idea and reported its parent unchanged at once (no training, no code stored),
 * and nobody explored it again (test/hostile/hypothesis-veto.test.ts). Such a hypothesis stays
 * open, and is explored again on a later best (the scheduler tries each once per best), until
 * FAILED_REBASE_CONTRIBUTORS contributors failed it so. A measured exploration decides it as before.
 */
const q = prepared(db => ({
  tries: db.select({ contributorId: experiments.contributorId, status: experiments.status, reason: experiments.reason }).from(workUnits)
    .innerJoin(experiments, eq(experiments.unitId, workUnits.id)).where(eq(workUnits.hypothesisId, sql.placeholder('h'))).prepare(),
  // Only an idea still in the queue: one the maintainer dropped (rejected) or that merged meanwhile stays so.
  set: db.update(hypotheses).set({ status: sql`${sql.placeholder('status')}` })
    .where(and(eq(hypotheses.id, sql.placeholder('h')), inArray(hypotheses.status, ['open', 'in-progress']))).prepare(),
}))

/** After an exploration's report that decided nothing (in its transaction): its hypothesis, open again or tested. */
export function afterFailedTry(tx: Writer, hypothesisId: string): void {
  const failedBy = new Set(q(tx).tries.all({ h: hypothesisId }).filter(r => failedOnItsWord(r.status, r.reason)).map(r => r.contributorId))
  q(tx).set.run({ h: hypothesisId, status: failedBy.size >= FAILED_REBASE_CONTRIBUTORS ? 'tested' : 'open' })
}

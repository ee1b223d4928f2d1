import { eq, gt, sql } from 'drizzle-orm'
import { isCandidate } from '@autoresearch-grid/shared'
import { measurements } from '../db/schema.ts'
import type { Writer } from '../db/open.ts'
import { prepared } from '../db/prepared.ts'
import { noiseFloorOfGroups, type NoiseFloor } from '../ratchet/index.ts'

/**
 * The noise floor σ of a campaign on a hardware class (ratchet/noise.ts), from measurements kept
 * grouped in memory and brought up to date with only the rows added since the last call. Reading
 * every measurement of the class for every candidate made each report O(reports so far)
 * (docs/PERFORMANCE.md, "Coordinator under load").
 *
 * Exactness: rows are only ever appended, and each call first checks that the last row it took
 * is still there, unchanged. A transaction rolled back after its rows were taken, or another
 * database behind the same process, fails that check and the groups are read afresh.
 */
interface Groups {
  /** `${campaign}\0${class}` → commit → val_bpb samples that count for σ. */
  byClass: Map<string, Map<string, number[]>>
  last: { id: number; experimentId: string; commit: string } | null
  /**
   * `${campaign}\0${class}` → the last answer and the prior it used, until a row joins that
   * class's groups: σ is a pure function of the groups, and the robust estimate (pairwise
   * differences) was most of a report's noise-floor work when every call recomputed it.
   */
  answers: Map<string, { priorSigma: number; floor: NoiseFloor }>
}

let groups: Groups = { byClass: new Map(), last: null, answers: new Map() }

const q = prepared(db => ({
  row: db.select({ experimentId: measurements.experimentId, commit: measurements.commit }).from(measurements).where(eq(measurements.id, sql.placeholder('id'))).prepare(),
  since: db.select().from(measurements).where(gt(measurements.id, sql.placeholder('id'))).orderBy(measurements.id).prepare(),
}))

export function noiseFloorOf(tx: Writer, campaign: string, hardwareClass: string, priorSigma: number): NoiseFloor {
  const seen = groups.last
  if (seen) {
    const row = q(tx).row.get({ id: seen.id })
    if (row?.experimentId !== seen.experimentId || row.commit !== seen.commit) groups = { byClass: new Map(), last: null, answers: new Map() }
  }
  const fresh = q(tx).since.all({ id: groups.last?.id ?? 0 })
  for (const m of fresh) {
    groups.last = { id: m.id, experimentId: m.experimentId, commit: m.commit }
    // The same rule as noiseFloor(): claims (explore, rebase runs) and non-runs say nothing about spread.
    if (isCandidate(m.kind) || !Number.isFinite(m.valBpb) || m.valBpb <= 0) continue
    const key = `${m.campaign}\0${m.hardwareClass}`
    groups.answers.delete(key)
    let byCommit = groups.byClass.get(key)
    if (!byCommit) groups.byClass.set(key, (byCommit = new Map()))
    const samples = byCommit.get(m.commit)
    if (samples) samples.push(m.valBpb)
    else byCommit.set(m.commit, [m.valBpb])
  }
  const key = `${campaign}\0${hardwareClass}`
  const answer = groups.answers.get(key)
  if (answer?.priorSigma === priorSigma) return answer.floor
  const floor = noiseFloorOfGroups([...(groups.byClass.get(key)?.values() ?? [])], priorSigma)
  groups.answers.set(key, { priorSigma, floor })
  return floor
}

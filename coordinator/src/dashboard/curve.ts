import type { UnitKind } from '@autoresearch-grid/shared'
import type { NoiseFloor } from '../ratchet/index.ts'

/**
 * The campaign's progress chart as data (pure: rows in, series out). One curve per hardware class,
 * because val_bpb is only comparable within a class (DESIGN §7):
 * - every experiment with a usable val_bpb is a point, grouped by what became of it;
 * - the running best is a step line of what the class knew of the best: its baselines of each
 *   best, and the kept experiments (not reverted) at the value their merge recorded;
 * - the noise band is ± σ of the class, the ratchet's own noise floor (pooled sd of repeated
 *   baseline/verify measurements of one commit; the campaign's prior until there are enough),
 *   which the caller looks up.
 */

export interface CurveExperiment {
  id: string
  createdAt: number
  kind: UnitKind
  status: string
  hardwareClass: string
  valBpb: number | null
  commit: string
  parentCommit: string
  description: string
  contributor: string | null
  /** The merge this experiment made, if any: its recorded value and whether it was reverted. */
  merge: { valAfter: number; reverted: boolean } | null
}

/** kept: on the branch · reverted: merged, then reverted · measured: a baseline or verification · tried: the rest. */
export type PointGroup = 'kept' | 'reverted' | 'measured' | 'tried'

export interface CurvePoint {
  id: string
  t: number
  valBpb: number
  group: PointGroup
  kind: CurveExperiment['kind']
  status: string
  description: string
  contributor: string | null
}

export interface ClassCurve {
  hardwareClass: string
  points: CurvePoint[]
  /** The running best: a step line, one entry per change. */
  best: { t: number; valBpb: number; experimentId: string }[]
  noise: NoiseFloor
}

function groupOf(e: CurveExperiment): PointGroup {
  if (e.merge) return e.merge.reverted ? 'reverted' : 'kept'
  if (e.kind === 'baseline' || e.kind === 'verify') return 'measured'
  return 'tried'
}

export function progressCurve(rows: readonly CurveExperiment[], noiseOf: (hardwareClass: string) => NoiseFloor): ClassCurve[] {
  const byClass = new Map<string, CurveExperiment[]>()
  for (const e of [...rows].sort((a, b) => a.createdAt - b.createdAt)) {
    if (e.valBpb === null || !Number.isFinite(e.valBpb) || e.valBpb <= 0) continue
    const list = byClass.get(e.hardwareClass)
    if (list) list.push(e)
    else byClass.set(e.hardwareClass, [e])
  }
  return [...byClass].map(([hardwareClass, list]) => ({
    hardwareClass,
    points: list.map(e => ({ id: e.id, t: e.createdAt, valBpb: e.valBpb!, group: groupOf(e), kind: e.kind, status: e.status,
      description: e.description, contributor: e.contributor })),
    best: runningBest(list),
    noise: noiseOf(hardwareClass),
  })).sort((a, b) => b.points.length - a.points.length)
}

/**
 * What the class knew of the best over time. A baseline measures the best of its day (its parent),
 * so it sets the line to the mean of that commit's baselines so far on this class; a kept
 * experiment sets it to the value its merge recorded. A class that only ever measures bests that
 * other classes found still gets a line that follows them down.
 */
function runningBest(list: readonly CurveExperiment[]): ClassCurve['best'] {
  const out: ClassCurve['best'] = []
  const baselines = new Map<string, number[]>()
  // Bests this class has moved past: a late baseline of one of them must not pull the line back.
  const superseded = new Set<string>()
  let current: string | null = null
  const moveTo = (commit: string, e: CurveExperiment, valBpb: number) => {
    if (current !== null && current !== commit) superseded.add(current)
    current = commit
    const last = out[out.length - 1]
    if (last && last.valBpb === valBpb) return
    if (last && last.t === e.createdAt) out.pop()
    out.push({ t: e.createdAt, valBpb, experimentId: e.id })
  }
  for (const e of list) {
    if (e.kind === 'baseline' && !superseded.has(e.parentCommit)) {
      const samples = baselines.get(e.parentCommit) ?? []
      samples.push(e.valBpb!)
      baselines.set(e.parentCommit, samples)
      moveTo(e.parentCommit, e, samples.reduce((s, v) => s + v, 0) / samples.length)
    } else if (e.merge && !e.merge.reverted) {
      superseded.add(e.parentCommit)
      moveTo(e.commit, e, e.merge.valAfter)
    }
  }
  return out
}

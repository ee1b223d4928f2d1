import { noiseFloor, type Measurement, type NoiseFloor } from '../ratchet/index.ts'

/**
 * The campaign's progress chart as data (pure: rows in, series out). One curve per hardware class,
 * because val_bpb is only comparable within a class (DESIGN §7):
 * - every experiment with a usable val_bpb is a point, grouped by what became of it;
 * - the running best joins the class's first baseline and then each kept experiment (not reverted)
 *   in time order, at the value its merge recorded (the verified mean where there was one);
 * - the noise band is ± σ of the class, the ratchet's own noise floor (`noiseFloor`: pooled sd of
 *   repeated baseline/verify measurements of one commit, the campaign's prior until there are enough).
 */

export interface CurveExperiment {
  id: string
  createdAt: number
  kind: 'baseline' | 'explore' | 'verify' | 'rebase'
  status: string
  hardwareClass: string
  valBpb: number | null
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

export function progressCurve(rows: readonly CurveExperiment[], measurements: readonly Measurement[], priorSigma: number): ClassCurve[] {
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
    noise: noiseFloor(measurements, hardwareClass, priorSigma),
  })).sort((a, b) => b.points.length - a.points.length)
}

/** First baseline (the mean of the baselines of that same parent), then each kept experiment. */
function runningBest(list: readonly CurveExperiment[]): ClassCurve['best'] {
  const first = list.find(e => e.kind === 'baseline')
  const out: ClassCurve['best'] = []
  if (first) {
    const same = list.filter(e => e.kind === 'baseline' && e.parentCommit === first.parentCommit).map(e => e.valBpb!)
    out.push({ t: first.createdAt, valBpb: same.reduce((s, v) => s + v, 0) / same.length, experimentId: first.id })
  }
  for (const e of list) {
    if (e.merge && !e.merge.reverted) out.push({ t: e.createdAt, valBpb: e.merge.valAfter, experimentId: e.id })
  }
  return out
}

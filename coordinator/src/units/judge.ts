import type { ReportStatus } from '@autoresearch-grid/shared'
import type { Writer } from '../events/log.ts'
import type { Campaign } from '../campaigns/campaigns.ts'
import type { experiments } from '../db/schema.ts'
import { parentMean } from './report.ts'

type Experiment = typeof experiments.$inferSelect
export interface Verdict {
  status: Experiment['status']
  decision: string
  /** Whether the val_bpb is a usable sample of the measured commit. */
  measured: boolean
}

/**
 * Reads what the ratchet needs from the database and applies it to one experiment.
 * First ratchet: a candidate is kept only if it beats the mean of its parent's measurements on the
 * same hardware class by at least minDelta, and only while its parent is still the best.
 */
export function judge(tx: Writer, c: Campaign, exp: Experiment, status: ReportStatus): Verdict {
  if (status === 'rejected-unsafe') return { status: 'rejected-unsafe', decision: 'rejected: the worker found the code unsafe to run', measured: false }
  const m = exp.metrics as { val_bpb: number; training_seconds: number } | null
  if (status === 'crash' || !m) return { status: 'crash', decision: 'crashed: no metrics', measured: false }
  if (!Number.isFinite(m.val_bpb) || m.val_bpb <= 0) return { status: 'rejected', decision: `rejected: val_bpb ${m.val_bpb} is not a positive finite number`, measured: false }
  const tol = c.spec.noise.budgetTolerance
  if (Math.abs(m.training_seconds - c.spec.budgetSeconds) > tol * c.spec.budgetSeconds)
    return { status: 'rejected', decision: `rejected: trained ${m.training_seconds}s, outside the ${c.spec.budgetSeconds}s budget ±${tol * 100}%`, measured: false }
  if (exp.kind === 'baseline' || exp.kind === 'verify') return { status: 'measured', decision: `measured ${m.val_bpb.toFixed(6)} on ${exp.hardwareClass}`, measured: true }
  const parent = parentMean(tx, c.name, exp.parentCommit, exp.hardwareClass)
  if (parent === null) return { status: 'pending', decision: `waiting for a baseline of the parent on ${exp.hardwareClass}`, measured: true }
  const delta = m.val_bpb - parent
  const verdict = `val_bpb ${m.val_bpb.toFixed(6)} vs parent ${parent.toFixed(6)} (Δ ${delta >= 0 ? '+' : ''}${delta.toFixed(6)})`
  if (delta > -c.spec.noise.minDelta) return { status: 'discarded', decision: `discarded: ${verdict}`, measured: true }
  if (exp.parentCommit !== c.bestCommit) return { status: 'stale', decision: `stale: ${verdict}, but the best moved on since its parent`, measured: true }
  return { status: 'kept', decision: `kept: ${verdict}`, measured: true }
}

import { createHash } from 'node:crypto'
import { join } from 'node:path'
import { LIMITS, sourceHash, type AgentUsage, type Progress, type Report, type WorkUnit, isCandidate } from '@autoresearch-grid/shared'
import { AgentError, emptyUsage, type Agent, type AgentSession, type Failure, type Proposal } from '../agent/agent.ts'
import { HeuristicAgent } from '../agent/heuristic-agent.ts'
import type { DataPaths } from '../data/campaign-data.ts'
import { prepareRunDir } from '../runner/run-dir.ts'
import { trainAndMeasure, type MeasureOptions, type Measurement } from '../runner/measure.ts'
import type { HostLayout } from '../sandbox/bwrap.ts'
import type { GpuLane, Overlap } from '../runner/lane.ts'
import { checkSource, describeViolations, type SafetyVerdict } from '../safety/policy.ts'
import type { Workspace } from '../workspace/git.ts'

/**
 * One experiment, in the two phases the pipeline overlaps: `prepareExperiment` (the agent edits,
 * the safety policy checks; no GPU) and `trainExperiment` (train, hand crashes back to the agent,
 * report). Shared by `worker join` and `worker solo`.
 */

export const MAX_ATTEMPTS = 3

export interface ExperimentContext {
  agent: Agent
  python: string
  trainerDir: string
  /** program.md, given to the agent. */
  program: string
  /** Locked files (prepare.py) the agent may read. */
  locked?: Record<string, string>
  /**
   * The bubblewrap sandbox every run of campaign code goes into (sandbox/detect.ts); null only when
   * the volunteer explicitly gave that up (`--unsafe-no-sandbox`).
   */
  sandbox: HostLayout | null
  /** Where the trainer runs; emptied before each run. One GPU lane, so one folder. */
  runDir: string
  /** Extra trainer environment, e.g. CUDA_VISIBLE_DEVICES. */
  env?: Record<string, string>
  /** The trainer's seed (AUTORESEARCH_SEED); the trainer's default when absent. */
  trainerSeed?: number
  /** Mixed into the per-unit seed of the agent's choices. */
  baseSeed?: number
  maxAttempts?: number
  /**
   * The GPU's turn, shared by the runs of one GPU (runner/lane.ts): a run may start up while
   * another trains. Unset: every run takes its own turn.
   */
  lane?: GpuLane
  /**
   * What a run's start-up may overlap in the lane, by whose code it runs (loop/start-up-overlap.ts);
   * the lane's own overlap when absent.
   */
  startUpOverlap?: (unit: WorkUnit, sourceHash: string) => Overlap
  log: (line: string) => void
  onProgress?: (unit: WorkUnit, progress: Progress) => void
  /** Called when a run gets the GPU (its clock starts) and when it passes the GPU on. */
  onTraining?: (running: boolean) => void
  /** A run trained `seconds` on its data by the worker's clock, on a budget of `budget`: the duty cycle. */
  onTrained?: (seconds: number, budget: number) => void
  /** A run of `unit`, files of hash `sourceHash`, was measured; its trainer reported a peak of `peakMb` (loop/start-up-overlap.ts). */
  onMeasured?: (unit: WorkUnit, sourceHash: string, peakMb: number | undefined) => void
  /** The duty cycle to put in reports. */
  dutyCycle?: () => number | undefined
  /**
   * Resolves once the disk has room for a run (loop/lane.ts, `untilRoomOnDisk`); awaited before each
   * run. `waiting` hears when a wait starts and ends.
   */
  roomOnDisk?: (signal?: AbortSignal, waiting?: (waiting: boolean) => void) => Promise<void>
  /** The unit's run waits for room on the disk, or goes on: its lease is left to run out meanwhile (loop/held.ts). */
  park?: (unit: WorkUnit, waiting: boolean) => void
  /**
   * Whether this exact source was already measured on this worker's hardware class (the
   * coordinator's `worker.known`); absent where there is nobody to ask (`worker solo`).
   */
  known?: (campaign: string, sourceHash: string) => Promise<Known | null>
  /** Trains and measures one candidate (default: runner/measure.ts); a stand-in lets tests run the loop with no process. */
  measure?: (o: MeasureOptions) => Promise<Measurement>
  /** The static safety policy (default: safety/policy.ts, a Python process); injectable for the same reason. */
  check?: (files: Record<string, string>, parent: Record<string, string>, editable: readonly string[]) => Promise<SafetyVerdict>
}

/** The coordinator's answer to `worker.known`: the experiment that already measured a source. */
export interface Known {
  experimentId: string
  valBpb: number | null
  status: string
  description: string
}

export interface Prepared {
  unit: WorkUnit
  workspace: Workspace
  session: AgentSession | null
  agentLabel: string
  files: Record<string, string>
  description: string
  rationale: string
  followUps: Proposal['followUps']
  verdict: SafetyVerdict
  attempts: number
  agentSeconds: number
  notes: string[]
}


/** Deterministic per unit: the same unit and base seed always give the agent the same seed. */
export function unitSeed(unitId: string, base = 0): number {
  return createHash('sha256').update(`${base}:${unitId}`).digest().readUInt32BE(0)
}

/** The candidate's files against the safety policy. */
export function checkCandidate(ctx: ExperimentContext, files: Record<string, string>, unit: WorkUnit): Promise<SafetyVerdict> {
  return ctx.check ? ctx.check(files, unit.source, unit.editableFiles) : checkSource(ctx.python, files, unit.source, unit.editableFiles)
}

/**
 * Keeps asking for repairs while the candidate fails the safety policy and attempts remain. Only
 * for candidates our own agent wrote: code the coordinator asks us to measure is never edited.
 */
async function untilSafe(ctx: ExperimentContext, p: Prepared, maxAttempts: number): Promise<void> {
  p.verdict = await checkCandidate(ctx, p.files, p.unit)
  while (!p.verdict.ok && p.session && p.attempts < maxAttempts) {
    const error = describeViolations(p.verdict.violations)
    p.notes.push(`attempt ${p.attempts} refused by the safety policy: ${error.split('\n')[0]}`)
    const proposal = await timedRepair(p, { kind: 'unsafe', error, logTail: '', attempt: p.attempts })
    if (!proposal) break
    adopt(p, proposal)
    p.verdict = await checkCandidate(ctx, p.files, p.unit)
  }
}

async function timedRepair(p: Prepared, failure: Failure): Promise<Proposal | null> {
  const started = performance.now()
  try {
    return await p.session!.repair(failure)
  } catch (err) {
    if (!(err instanceof AgentError)) throw err
    p.notes.push(`repair failed: ${err.message}`)
    return null
  } finally {
    p.agentSeconds += (performance.now() - started) / 1000
  }
}

function adopt(p: Prepared, proposal: Proposal): void {
  p.attempts++
  p.files = proposal.files
  p.description = proposal.description
  p.rationale = proposal.rationale
  if (proposal.followUps.length) p.followUps = proposal.followUps
}

/** Only the files the unit may change, so a structural violation cannot reach the workspace. */
function editableOnly(files: Record<string, string>, editable: readonly string[]): Record<string, string> {
  return Object.fromEntries(Object.entries(files).filter(([n]) => editable.includes(n)))
}

/** Phase 1: the parent goes into the workspace, the agent proposes, the policy checks. */
export async function prepareExperiment(ctx: ExperimentContext, unit: WorkUnit, workspace: Workspace, signal?: AbortSignal): Promise<Prepared> {
  const started = performance.now()
  await workspace.startFrom(unit.parentCommit, unit.source, { unitId: unit.id })
  const p: Prepared = {
    unit, workspace, session: null, agentLabel: ctx.agent.label, files: { ...unit.source },
    description: `${unit.kind} of ${unit.parentCommit.slice(0, 10)}`, rationale: '', followUps: [],
    verdict: { ok: false, violations: [] }, attempts: 1, agentSeconds: 0, notes: [],
  }
  if (isCandidate(unit.kind)) {
    const task = { unit, files: { ...unit.source }, program: ctx.program, locked: ctx.locked, seed: unitSeed(unit.id, ctx.baseSeed), dir: workspace.dir, signal, log: ctx.log }
    let proposal: Proposal
    try {
      p.session = ctx.agent.begin(task)
      proposal = await p.session.propose()
    } catch (err) {
      if (!(err instanceof AgentError) || signal?.aborted) throw err
      // The unit still gets an experiment: the built-in researcher stands in for this one.
      ctx.log(`${unit.id}: ${ctx.agent.label} failed (${err.message}); the heuristic researcher takes this unit`)
      p.notes.push(`${ctx.agent.label} failed: ${err.message}; fell back to the heuristic researcher`)
      p.session = new HeuristicAgent().begin(task)
      p.agentLabel = `heuristic (fallback from ${ctx.agent.label})`
      proposal = await p.session.propose()
    }
    p.attempts = 0
    adopt(p, proposal)
  }
  p.agentSeconds = (performance.now() - started) / 1000
  await untilSafe(ctx, p, ctx.maxAttempts ?? MAX_ATTEMPTS)
  await workspace.commitCandidate(editableOnly(p.files, unit.editableFiles), p.description)
  return p
}

function usageOf(p: Prepared): AgentUsage {
  const base = p.session?.usage() ?? emptyUsage(isCandidate(p.unit.kind) ? p.agentLabel : 'none')
  return { ...base, agent: p.agentLabel.slice(0, 80), attempts: Math.min(10, Math.max(1, p.attempts)) }
}

function report(ctx: ExperimentContext, p: Prepared, status: Report['status'], diff: string, run: Measurement | null, runSeconds: number): Report {
  const notes = [p.rationale, ...p.notes, run?.error ? `last run: ${run.error}` : ''].filter(Boolean).join('\n')
  const duty = ctx.dutyCycle?.()
  return {
    unitId: p.unit.id,
    leaseToken: p.unit.leaseToken,
    status,
    source: editableOnly(p.files, p.unit.editableFiles),
    description: p.description.slice(0, LIMITS.descriptionChars) || 'candidate',
    diff: diff.length <= LIMITS.diffBytes ? diff : diff.slice(0, LIMITS.diffBytes),
    metrics: run?.metrics ?? null,
    ...(run?.error ? { rejection: run.error.slice(0, 2000) } : {}),
    logTail: (run?.logTail ?? '').slice(-LIMITS.logTailBytes),
    agentNotes: notes.slice(0, LIMITS.notesChars),
    followUps: p.followUps.map(f => ({ title: f.title, body: f.body ?? '' })).slice(0, LIMITS.followUps),
    timings: { agentSeconds: Math.round(p.agentSeconds * 1000) / 1000, runSeconds: Math.round(runSeconds * 1000) / 1000 },
    agentUsage: usageOf(p),
    ...(duty !== undefined && Number.isFinite(duty) ? { dutyCycle: Math.min(1, Math.max(0, duty)) } : {}),
  }
}

/**
 * Phase 2: trains the prepared candidate; a crash goes back to the agent (the last 50 log lines)
 * for up to `maxAttempts` candidates in all. Returns null when stopped (cancel, shutdown).
 * A candidate that fails the safety policy is reported as rejected-unsafe and never run.
 */
export async function trainExperiment(ctx: ExperimentContext, p: Prepared, data: DataPaths, signal?: AbortSignal): Promise<Report | null> {
  const { unit } = p
  const maxAttempts = ctx.maxAttempts ?? MAX_ATTEMPTS
  if (!p.verdict.ok) {
    const why = describeViolations(p.verdict.violations)
    ctx.log(`${unit.id}: refused by the safety policy, not run: ${why.split('\n')[0]}`)
    p.notes.unshift(`rejected by the safety policy (never run):\n${why}`)
    return report(ctx, p, 'rejected-unsafe', await p.workspace.diff(), null, 0)
  }
  // A source measured before (this one's parent included) points at that run; an unchanged one not
  // measured yet is reported as no change. Neither is trained.
  const reused = (await alreadyMeasured(ctx, p)) ?? (await nothingChanged(ctx, p))
  if (reused) return reused
  let runSeconds = 0
  for (;;) {
    ctx.log(`${unit.id} ${unit.kind} on ${unit.campaign}${p.attempts > 1 ? ` (attempt ${p.attempts})` : ''}: ${p.description}`)
    const files = editableOnly(p.files, unit.editableFiles)
    await ctx.roomOnDisk?.(signal, waiting => ctx.park?.(unit, waiting))
    if (signal?.aborted) return null
    const seat = ctx.lane?.seat()
    const runDir = seatRunDir(ctx.runDir, seat?.index ?? 0)
    await prepareRunDir({ runDir, files, trainerDir: ctx.trainerDir })
    const hash = sourceHash(files)
    const result: Measurement = await (ctx.measure ?? trainAndMeasure)({
      python: ctx.python, trainerDir: ctx.trainerDir, runDir, budgetSeconds: unit.budgetSeconds, profile: unit.profile,
      seed: ctx.trainerSeed, cacheDir: data.cacheDir, dataDir: data.dataDir, extraEnv: ctx.env, sandbox: ctx.sandbox,
      sourceHash: hash, trustedCode: unit.kind === 'baseline', lane: ctx.lane, overlap: ctx.startUpOverlap?.(unit, hash), onTraining: ctx.onTraining, signal,
      restage: async () => { await prepareRunDir({ runDir, files, trainerDir: ctx.trainerDir }) },
      onProgress: prog => ctx.onProgress?.(unit, prog),
    }).finally(() => seat?.free())
    ctx.onTrained?.(result.trainSeconds, unit.budgetSeconds)
    if (result.metrics) ctx.onMeasured?.(unit, hash, result.metrics.peak_vram_mb)
    if (result.status !== 'aborted') ctx.log(`${unit.id}: start-up ${result.startupSeconds.toFixed(1)}s (off the clock), trained ${result.trainSeconds.toFixed(1)}s, evaluated in ${(result.runSeconds - result.trainSeconds).toFixed(1)}s`)
    runSeconds += result.runSeconds
    if (result.status === 'aborted' || signal?.aborted) return null
    if (result.status === 'ok') return report(ctx, p, 'ok', await p.workspace.diff(), result, runSeconds)
    ctx.log(`${unit.id}: attempt ${p.attempts} ${result.status === 'crash' ? 'failed' : 'was rejected'}: ${result.error}`)
    p.notes.push(`attempt ${p.attempts} ${result.status === 'crash' ? 'failed' : 'was rejected by the trusted measurement'}: ${result.error}`)
    if (!p.session || p.attempts >= maxAttempts) return report(ctx, p, result.status, await p.workspace.diff(), result, runSeconds)
    const proposal = await timedRepair(p, { kind: 'crash', error: result.error ?? 'the run failed', logTail: result.logTail, attempt: p.attempts })
    if (!proposal) return report(ctx, p, 'crash', await p.workspace.diff(), result, runSeconds)
    adopt(p, proposal)
    await untilSafe(ctx, p, maxAttempts)
    await p.workspace.commitCandidate(editableOnly(p.files, unit.editableFiles), `${p.description}\n\nrepair attempt ${p.attempts}`)
    if (!p.verdict.ok) {
      p.notes.unshift(`rejected by the safety policy (never run):\n${describeViolations(p.verdict.violations)}`)
      return report(ctx, p, 'rejected-unsafe', await p.workspace.diff(), result, runSeconds)
    }
  }
}

/**
 * A candidate whose agent changed nothing is not trained: it would measure its parent again, and
 * the coordinator records it as no candidate (coordinator/src/units/report.ts, `noChange`). The
 * report says so with no metrics, and the GPU goes to the next unit.
 */
async function nothingChanged(ctx: ExperimentContext, p: Prepared): Promise<Report | null> {
  if (!isCandidate(p.unit.kind)) return null
  if (sourceHash(editableOnly(p.files, p.unit.editableFiles)) !== sourceHash(editableOnly(p.unit.source, p.unit.editableFiles))) return null
  ctx.log(`${p.unit.id}: not trained: the agent changed nothing`)
  p.notes.push('not trained: the agent changed nothing, so there was nothing to measure')
  return report(ctx, p, 'ok', await p.workspace.diff(), null, 0)
}

/**
 * DESIGN §8: an identical train.py is never trained twice on a class. Before training a candidate
 * our agent wrote, ask the coordinator; if it already measured this exact source here, report the
 * reuse instead of spending the GPU on it. A run that was rejected (say, out of budget on a
 * loaded machine) is not worth reusing, and a coordinator that cannot answer just means we train.
 */
async function alreadyMeasured(ctx: ExperimentContext, p: Prepared): Promise<Report | null> {
  if (!ctx.known || !isCandidate(p.unit.kind)) return null
  const files = editableOnly(p.files, p.unit.editableFiles)
  let known: Known | null
  try {
    known = await ctx.known(p.unit.campaign, sourceHash(files))
  } catch (err) {
    ctx.log(`${p.unit.id}: could not ask whether this source was already measured (${(err as Error).message}); training it`)
    return null
  }
  if (!known || known.valBpb === null || known.status.startsWith('rejected')) return null
  ctx.log(`${p.unit.id}: not trained: identical to experiment ${known.experimentId} (val_bpb ${known.valBpb.toFixed(6)}, ${known.status}) on this hardware class`)
  p.notes.push(`not trained: this exact source was already measured as experiment ${known.experimentId} (val_bpb ${known.valBpb.toFixed(6)})`)
  return { ...report(ctx, p, 'ok', await p.workspace.diff(), null, 0), reused: { experimentId: known.experimentId } }
}

/** Pure: `; claude:… 12.3k tokens in, 1.1k out, $0.0520` for the log, empty for an agent that made no calls. */
export function usageLine(r: Report): string {
  const u = r.agentUsage
  if (!u || u.requests === 0 || u.agent.startsWith('external')) return ''
  const k = (n: number) => (n >= 1000 ? `${(n / 1000).toFixed(1)}k` : String(n))
  return `; ${u.agent}: ${u.requests} calls, ${k(u.inputTokens + u.cacheReadTokens + u.cacheWriteTokens)} tokens in, ${k(u.outputTokens)} out${u.costUsd !== null ? `, $${u.costUsd.toFixed(4)}` : ''}`
}

/** The run folder of a GPU lane inside a worker's state. */
export const runDirOf = (stateDir: string) => join(stateDir, 'run')
/** The run folder of a lane's seat (runner/lane.ts): seat 0 is `run`, seat 1 `run-1`. */
export const seatRunDir = (runDir: string, seat: number) => seat === 0 ? runDir : `${runDir}-${seat}`

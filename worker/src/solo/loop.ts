import { join } from 'node:path'
import { type Profile, type Report, type WorkUnit, decideNaive, formatResultRow, naiveResultStatus, parseResultsTsv, type ResultStatus } from '@autoresearch-grid/shared'
import { ensurePrepared, findPython } from '@autoresearch-grid/trainer'
import type { Agent } from '../agent/agent.ts'
import { chooseAgent } from '../agent/choose.ts'
import { probeHardware } from '../hardware/probe.ts'
import { DutyCycle } from '../loop/duty-cycle.ts'
import { prepareExperiment, runDirOf, seatRunDir, trainExperiment, usageLine, type ExperimentContext, type Prepared } from '../loop/experiment.ts'
import { runPipeline } from '../loop/pipeline.ts'
import { GpuLane } from '../runner/lane.ts'
import { readLocked, readProgram } from '../loop/program.ts'
import { WorkspacePool } from '../loop/slots.ts'
import { checkSource } from '../safety/policy.ts'
import { chooseSandbox } from '../sandbox/choose.ts'
import { killLeftover } from '../runner/leftovers.ts'
import { plainProgress, progressFor, type ProgressSink } from '../ui/progress.ts'
import { mergeText } from '../workspace/merge.ts'
import { ResearchRepo } from './repo.ts'
import { summarize } from './results.ts'

export interface SoloOptions {
  /** The research repository (created if missing; train.py copied from the trainer if absent). */
  dir: string
  /** The branch is `autoresearch/<tag>`; an existing one is resumed. */
  tag: string
  trainerDir: string
  /** Data, workspaces and runs (default `<dir>/.autoresearch-grid`, git-excluded). */
  stateDir?: string
  budgetSeconds: number
  /** Default: `gpu` with CUDA, else `cpu-tiny`. */
  profile?: Profile
  vocabSize?: number
  /** Experiments to run after the baseline; unbounded when absent. */
  experiments?: number
  /** An improvement must beat the best by more than this to be kept (default 0: any improvement). */
  minDelta?: number
  agent?: Agent
  agentCmd?: string
  pipeline?: boolean
  programFile?: string
  seed?: number
  /** Run without the sandbox even where one can be made (`--unsafe-no-sandbox`). */
  unsafeNoSandbox?: boolean
  env?: Record<string, string>
  log?: (line: string) => void
  progress?: ProgressSink
  signal?: AbortSignal
}

export interface SoloSummary {
  experiments: number
  kept: number
  best: number | null
  dutyCycle: number | undefined
  trainingSeconds: number
  heldSeconds: number
}

/**
 * `worker solo`: plain autoresearch on one machine, no coordinator. The same experiment loop as
 * `worker join` (agent, safety policy, isolated trainer, crash repair, pipelining), with a local
 * ratchet: a baseline first, then each experiment is committed on `autoresearch/<tag>` and kept
 * only if its val_bpb beats the best; otherwise the branch goes back. Every row lands in results.tsv.
 */
export async function runSolo(o: SoloOptions): Promise<SoloSummary> {
  const ui = o.progress ?? (o.log ? plainProgress(o.log) : progressFor())
  const log = (line: string) => ui.log(line)
  const stateDir = o.stateDir ?? join(o.dir, '.autoresearch-grid')
  const pipelined = o.pipeline ?? true
  const python = await findPython()
  const repo = await ResearchRepo.open(o.dir, o.tag, o.trainerDir)
  const profile = o.profile ?? ((await probeHardware({ python: python.path, env: { ...process.env, ...o.env } })).gpus.length ? 'gpu' : 'cpu-tiny')
  const agent = o.agent ?? chooseAgent({ agentCmd: o.agentCmd, env: process.env, stateDir, trainerDir: o.trainerDir })
  // Solo trains the volunteer's own research: without a sandbox it goes on, saying so.
  const sandbox = await chooseSandbox(python.path, { unsafeNoSandbox: o.unsafeNoSandbox, allowWithout: true })
  const program = await readProgram(o.trainerDir, o.programFile)
  log(`solo on ${repo.branch} in ${o.dir}: ${profile}, ${o.budgetSeconds}s per experiment; researcher: ${agent.label}; ${pipelined ? 'pipelined' : 'not pipelined'}; trainer: ${sandbox.how}`)
  // A trainer a killed predecessor left running would share the GPU with ours (runner/leftovers.ts).
  const leftover = (await Promise.all([0, 1].map(seat => killLeftover(seatRunDir(runDirOf(stateDir), seat))))).find(pid => pid !== null) ?? null
  if (leftover) log(`stopped a trainer that a previous run left running (process group ${leftover})`)
  log(`preparing data (${profile})`)
  const cacheDir = join(stateDir, 'data')
  const data = await ensurePrepared({ python: python.path, trainerDir: o.trainerDir, cacheDir, profile, vocabSize: o.vocabSize, signal: o.signal })

  const rows = parseResultsTsv(await repo.results())
  const state = { ...summarize(rows), commit: await repo.head(), source: await repo.trainPy(), count: rows.length }
  const campaign = o.tag.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+/, '').slice(0, 63) || 'solo'
  const duty = new DutyCycle()
  const stop = new AbortController()
  o.signal?.addEventListener('abort', () => stop.abort(o.signal?.reason), { once: true })
  let issued = 0
  let explored = 0
  let done = 0
  let kept = 0
  const held = new Set<string>()
  const release = (id: string) => { if (held.delete(id)) duty.hold(-1) }

  const unitFor = (kind: WorkUnit['kind']): WorkUnit => ({
    id: `${campaign}-${rows.length + issued}`, kind, campaign, profile, budgetSeconds: o.budgetSeconds, leaseToken: 'solo', leaseExpiresAt: 0,
    parentCommit: state.commit, source: { 'train.py': state.source }, editableFiles: ['train.py'], hypothesis: null, referenceDiff: null,
    triedOnParent: state.triedSinceBest.slice(-200),
  })
  const ctx: ExperimentContext = {
    agent, python: python.path, trainerDir: o.trainerDir, program, locked: await readLocked(o.trainerDir), sandbox: sandbox.host, runDir: runDirOf(stateDir),
    // On a GPU the next run starts up while this one trains (runner/lane.ts); on a CPU start-up
    // would take cores from the timed training.
    lane: profile === 'gpu' && pipelined ? new GpuLane() : undefined,
    env: o.env, trainerSeed: o.seed, baseSeed: o.seed, log,
    onProgress: (_unit, p) => ui.progress('', p),
    onTrained: (seconds, budget) => duty.trained(seconds, budget),
    dutyCycle: () => duty.ratio(),
  }
  const pool = new WorkspacePool(join(stateDir, 'workspaces'), pipelined ? 2 : 1)

  /** A candidate prepared on a best that has moved since: carried over by a three-way merge, or redone. */
  const rebase = async (p: Prepared): Promise<Prepared> => {
    if (p.unit.parentCommit === state.commit) return p
    const merged = await mergeText(p.unit.source['train.py'], state.source, p.files['train.py'])
    if (merged !== null) {
      log(`${p.unit.id}: the best moved while this was prepared; the change merged cleanly onto ${state.commit.slice(0, 7)}`)
      const unit = { ...p.unit, parentCommit: state.commit, source: { 'train.py': state.source } }
      await p.workspace.startFrom(unit.parentCommit, unit.source, { unitId: unit.id })
      await p.workspace.commitCandidate({ 'train.py': merged }, p.description)
      return { ...p, unit, files: { 'train.py': merged }, verdict: await checkSource(python.path, { 'train.py': merged }, unit.source, unit.editableFiles), notes: [...p.notes, 'merged onto the new best'] }
    }
    log(`${p.unit.id}: the best moved and the change conflicts with it; preparing again on ${state.commit.slice(0, 7)}`)
    return prepareExperiment(ctx, { ...p.unit, parentCommit: state.commit, source: { 'train.py': state.source }, triedOnParent: state.triedSinceBest.slice(-200) }, p.workspace, stop.signal)
  }

  const record = async (p: Prepared, report: Report) => {
    const baseline = p.unit.kind === 'baseline'
    const val = report.metrics?.val_bpb ?? null
    let status: ResultStatus = report.status === 'ok' ? naiveResultStatus(decideNaive(val, state.best, o.minDelta ?? 0)) : 'crash'
    if (baseline && status === 'crash') {
      throw new Error(`the baseline train.py crashed, so there is nothing to improve on: ${report.agentNotes.split('\n').pop()}\n${report.logTail.split('\n').slice(-15).join('\n')}`)
    }
    if (baseline) status = 'keep'
    const description = baseline ? 'baseline' : `${report.status === 'rejected-unsafe' ? 'refused by the safety policy: ' : ''}${report.description}`
    const commit = baseline ? state.commit : await repo.commit(report.source['train.py'], `${description}\n\n${val !== null ? `val_bpb: ${val.toFixed(6)}\n` : ''}status: ${status}`)
    if (status === 'keep') {
      kept += baseline ? 0 : 1
      state.best = val
      state.commit = commit
      state.source = report.source['train.py']
      state.triedSinceBest = []
    } else {
      if (!baseline) await repo.discard(commit, state.commit, state.count)
      state.triedSinceBest.push(description)
    }
    state.count++
    await repo.appendResult(formatResultRow({ commit, valBpb: val, memoryGb: (report.metrics?.peak_vram_mb ?? 0) / 1024, status, description }))
    const d = duty.seconds()
    log(`${commit.slice(0, 7)} ${status}${val !== null ? ` val_bpb ${val.toFixed(6)}` : ''} (best ${state.best?.toFixed(6) ?? '-'}): ${description}; GPU duty cycle ${((duty.ratio() ?? 0) * 100).toFixed(0)}% (${d.training.toFixed(0)}s of ${d.held.toFixed(0)}s)${usageLine(report)}`)
  }

  let final: SoloSummary | null = null
  const summary = (): SoloSummary => {
    const d = duty.seconds()
    return { experiments: done, kept, best: state.best, dutyCycle: duty.ratio(), trainingSeconds: d.training, heldSeconds: d.held }
  }
  await runPipeline<WorkUnit, Prepared>({
    // With a GPU lane two units are in the GPU phase at once (one trains, the next starts up), and
    // a third is with the agent.
    depth: pipelined ? (ctx.lane ? 3 : 2) : 1,
    gpuSlots: ctx.lane ? 2 : 1,
    order: 'arrival',
    signal: stop.signal,
    next: async () => {
      if (stop.signal.aborted) return null
      const baseline = state.best === null && issued === 0
      if (!baseline && o.experiments !== undefined && explored >= o.experiments) return null
      const unit = unitFor(baseline ? 'baseline' : 'explore')
      issued++
      if (!baseline) explored++
      held.add(unit.id)
      duty.hold(1)
      return unit
    },
    prepare: async unit => {
      const workspace = await pool.acquire()
      try {
        return await prepareExperiment(ctx, unit, workspace, stop.signal)
      } catch (err) {
        pool.release(workspace)
        throw err
      }
    },
    train: async first => {
      let p = first
      try {
        p = await rebase(first)
        ui.start('', { unitId: p.unit.id, title: p.description, budgetSeconds: p.unit.budgetSeconds })
        let report: Report | null
        try {
          report = await trainExperiment(ctx, p, { cacheDir, dataDir: data.dataDir }, stop.signal)
        } finally {
          ui.stop('')
        }
        if (!report) return
        await record(p, report)
        if (p.unit.kind !== 'baseline') done++
        if (o.experiments !== undefined && done >= o.experiments) {
          final = summary()
          stop.abort('done')
        }
      } finally {
        pool.release(p.workspace)
        release(first.unit.id)
      }
    },
    onError: (unit, err) => {
      release(unit.id)
      if (stop.signal.aborted) return
      stop.abort(err)
      log(`${unit.id}: ${(err as Error).message}`)
    },
  })
  if (stop.signal.reason instanceof Error) throw stop.signal.reason
  return final ?? summary()
}

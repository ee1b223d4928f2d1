import { join } from 'node:path'
import type { Profile } from '@autoresearch-grid/shared'
import { ensurePrepared } from '@autoresearch-grid/trainer'
import type { Agent } from '../agent/agent.ts'
import { probeHardware } from '../hardware/probe.ts'
import { DepthGauge, LaneDepth } from '../loop/depth.ts'
import { DutyCycle } from '../loop/duty-cycle.ts'
import { runExperimentLoop } from '../loop/experiment-loop.ts'
import { laneContext, openLane, stopLeftoverTrainer } from '../loop/lane.ts'
import { WorkspacePool } from '../loop/slots.ts'
import { LoopStop } from '../loop/stop.ts'
import { plainProgress, progressFor, type ProgressSink } from '../ui/progress.ts'
import { GpuLane } from '../runner/lane.ts'
import { StartUpOverlap } from '../loop/start-up-overlap.ts'
import { ResearchRepo } from './repo.ts'
import { LocalResearch } from './research.ts'

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
  /** Time limit for one run of `agentCmd`. */
  agentTimeoutSeconds?: number
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
 * `worker join` (loop/experiment-loop.ts: agent, safety policy, isolated trainer, crash repair,
 * pipelining), with units from the local researcher and results to the local ratchet
 * (solo/research.ts): a baseline first, then each experiment is committed on `autoresearch/<tag>`
 * and kept only if its val_bpb beats the best. Every row lands in results.tsv.
 */
export async function runSolo(o: SoloOptions): Promise<SoloSummary> {
  const ui = o.progress ?? (o.log ? plainProgress(o.log) : progressFor())
  const log = (line: string) => ui.log(line)
  const stateDir = o.stateDir ?? join(o.dir, '.autoresearch-grid')
  const pipelined = o.pipeline ?? true
  // Solo trains the volunteer's own research: without a sandbox it goes on, saying so.
  const lane = await openLane({ ...o, stateDir, allowWithoutSandbox: true })
  const repo = await ResearchRepo.open(o.dir, o.tag, o.trainerDir)
  const hardware = await probeHardware({ python: lane.python.path, env: { ...process.env, ...o.env } })
  const profile = o.profile ?? (hardware.gpus.length ? 'gpu' : 'cpu-tiny')
  // On a GPU the next run starts up while this one trains (runner/lane.ts) where the card holds
  // both, by what the last run held at its peak (loop/start-up-overlap.ts: every run of solo is the
  // volunteer's own code); otherwise only beside its evaluation. On a CPU start-up would take cores
  // from the timed training.
  const gpuLane = profile === 'gpu' && pipelined ? new GpuLane('evaluation') : undefined
  const overlap = gpuLane && new StartUpOverlap(hardware.gpus[0]?.memoryMb ?? 0, undefined, log)
  log(`solo on ${repo.branch} in ${o.dir}: ${profile}, ${o.budgetSeconds}s per experiment; researcher: ${lane.agent.label}; ${pipelined ? `pipelined${overlap ? `, next start-up beside ${overlap.roomForTwo ? 'training (while two runs fit the card)' : 'evaluation'}` : ''}` : 'not pipelined'}; trainer: ${lane.sandbox.how}`)
  await stopLeftoverTrainer(lane, log)
  log(`preparing data (${profile})`)
  const cacheDir = join(stateDir, 'data')
  const data = await ensurePrepared({ python: lane.python.path, trainerDir: o.trainerDir, cacheDir, profile, vocabSize: o.vocabSize, signal: o.signal })

  const duty = new DutyCycle()
  const ctx = laneContext(lane, { ...o, duty, log }, {
    onProgress: (_unit, p) => ui.progress('', p), lane: gpuLane,
    startUpOverlap: overlap && ((unit, hash) => overlap.overlapFor(unit, hash)), onMeasured: overlap && ((unit, hash, peak) => overlap.measured(unit, hash, peak)),
  })
  let research: LocalResearch | null = null
  const stop = new LoopStop<SoloSummary>(o.signal, () => {
    const d = duty.seconds()
    return { experiments: research?.done ?? 0, kept: research?.kept ?? 0, best: research?.best ?? null, dutyCycle: duty.ratio(), trainingSeconds: d.training, heldSeconds: d.held }
  })
  research = await LocalResearch.open({
    repo, ctx, duty, data: { cacheDir, dataDir: data.dataDir }, campaign: campaignOf(o.tag), profile, budgetSeconds: o.budgetSeconds,
    experiments: o.experiments, minDelta: o.minDelta ?? 0, stop, log,
  })
  try {
    // A fixed spare at most: the depth rule holds two units when capped at two (loop/depth.ts);
    // with a GPU lane one more, the one starting up while another trains.
    const cap = pipelined ? (gpuLane ? 3 : 2) : 1
    const depth = new LaneDepth(new DepthGauge({ cap, budgetSeconds: () => o.budgetSeconds }), log)
    await runExperimentLoop({
      source: research, sink: research, ctx, depth, order: 'arrival', signal: stop.signal, ui, lane: '',
      workspaces: new WorkspacePool(join(stateDir, 'workspaces'), cap),
    })
  } finally {
    stop.dispose()
  }
  const failure = stop.failure()
  if (failure) throw failure
  return stop.summary()
}

/** The tag as a campaign name: what unit ids and the agent see. */
function campaignOf(tag: string): string {
  return tag.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+/, '').slice(0, 63) || 'solo'
}

import { findPython } from '@autoresearch-grid/trainer'
import type { Agent } from '../agent/agent.ts'
import { chooseAgent } from '../agent/choose.ts'
import { pause } from '../client/backoff.ts'
import { killLeftover } from '../runner/leftovers.ts'
import { chooseSandbox, type SandboxChoice } from '../sandbox/choose.ts'
import { diskProblem } from '../sandbox/limits.ts'
import type { DutyCycle } from './duty-cycle.ts'
import { runDirOf, seatRunDir, type ExperimentContext } from './experiment.ts'
import { readLocked, readProgram } from './program.ts'

/**
 * What one GPU lane needs before its first unit, the same for `worker join` and `worker solo`: the
 * trainer's Python, the researcher, the sandbox, program.md and the locked files the agent may read.
 */

export interface LaneOptions {
  /** Where the lane keeps its runs (and the external agent its prompts). */
  stateDir: string
  trainerDir: string
  /** Who edits train.py; chosen from the environment and `agentCmd` when absent. */
  agent?: Agent
  agentCmd?: string
  /** Time limit for one run of `agentCmd`. */
  agentTimeoutSeconds?: number
  /** program.md to give the agent (default: the checkout's). */
  programFile?: string
  unsafeNoSandbox?: boolean
  /** Go on without a sandbox where none can be made, saying so (solo: the volunteer's own code). */
  allowWithoutSandbox?: boolean
}

export interface Lane {
  python: { path: string; torchVersion: string }
  agent: Agent
  sandbox: SandboxChoice
  program: string
  locked: Record<string, string>
  runDir: string
}

export async function openLane(o: LaneOptions): Promise<Lane> {
  const python = await findPython()
  const agent = o.agent ?? chooseAgent({ agentCmd: o.agentCmd, agentTimeoutSeconds: o.agentTimeoutSeconds, env: process.env, stateDir: o.stateDir, trainerDir: o.trainerDir })
  const sandbox = await chooseSandbox(python.path, { unsafeNoSandbox: o.unsafeNoSandbox, allowWithout: o.allowWithoutSandbox })
  const program = await readProgram(o.trainerDir, o.programFile)
  return { python, agent, sandbox, program, locked: await readLocked(o.trainerDir), runDir: runDirOf(o.stateDir) }
}

/** A trainer a killed predecessor left running would share the GPU with ours (runner/leftovers.ts). */
export async function stopLeftoverTrainer(lane: Lane, log: (line: string) => void): Promise<void> {
  // Both seats of the GPU lane (runner/lane.ts) may have left one.
  const leftover = (await Promise.all([0, 1].map(seat => killLeftover(seatRunDir(lane.runDir, seat))))).find(pid => pid !== null) ?? null
  if (leftover) log(`stopped a trainer that a previous run of this worker left running (process group ${leftover})`)
}

/**
 * Returns once the disk under `dir` is above the floor (`floor()`, read at each look) below which
 * runs are stopped (sandbox/limits.ts, `diskProblem`), or `signal` aborts: a run started below it
 * would be stopped as soon as it wrote its weights (below the floor a run's own writes of 256 MiB or
 * more are half of the fall), a failed verification counted against its candidate. Says once that
 * it waits, and once that it goes on; `o.waiting` hears when the wait starts and ends, so the
 * worker stops renewing the lease of the unit that waits and another worker can take it
 * (loop/held.ts, `leases`).
 */
export async function untilRoomOnDisk(dir: string, floor: () => number | undefined, log: (line: string) => void, signal?: AbortSignal,
  o: { pollMs?: number; waiting?: (waiting: boolean) => void } = {}): Promise<void> {
  let waited = false
  try {
    for (let problem = diskProblem(dir, floor()); problem && !signal?.aborted; problem = diskProblem(dir, floor())) {
      if (!waited) {
        log(`waiting before the next run: ${problem}`)
        o.waiting?.(true)
      }
      waited = true
      await pause(o.pollMs ?? 30_000, signal)
    }
  } finally {
    if (waited) o.waiting?.(false)
  }
  if (waited && !signal?.aborted) log('room on the disk again: the next run starts')
}

/** The experiment context of the lane: its parts, the duty cycle, and what the caller adds. */
export function laneContext(lane: Lane, o: { trainerDir: string; env?: Record<string, string>; seed?: number; duty: DutyCycle; log: (line: string) => void }, extra: Partial<ExperimentContext> = {}): ExperimentContext {
  return {
    agent: lane.agent, python: lane.python.path, trainerDir: o.trainerDir, program: lane.program, locked: lane.locked, sandbox: lane.sandbox.host, runDir: lane.runDir,
    env: o.env, trainerSeed: o.seed, baseSeed: o.seed, log: o.log,
    onTrained: (seconds, budget) => o.duty.trained(seconds, budget),
    dutyCycle: () => o.duty.ratio(),
    roomOnDisk: lane.sandbox.host?.limits ? (signal, waiting) => untilRoomOnDisk(lane.runDir, () => lane.sandbox.host?.limits?.diskFloorBytes, o.log, signal, { waiting }) : undefined,
    ...extra,
  }
}

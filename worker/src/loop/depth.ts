import { LIMITS } from '@autoresearch-grid/shared'

/**
 * How many units a worker holds at once — its pipeline depth — so that a candidate is ready
 * whenever the trainer frees up, however slow its agent is compared with a training run.
 *
 * When a run ends, its report frees a place and the coordinator sends a new unit; the agent starts
 * on it at once, and it reaches the trainer after the `depth - 1` units already in hand have
 * trained. So the trainer never waits while `agent ≤ (depth - 1) · training`:
 * `depth = 1 + ceil(slowest agent / training)`, at least 2 (the spare also hides the report's round
 * trip and a fast agent), at most the cap. Holding more than needed costs little (units wait in the
 * worker's hands, leases renewed by heartbeats); holding fewer leaves the GPU idle, so in doubt the
 * rule holds more: the slowest recent proposal rather than the mean, and the cap until the agent
 * has been measured at all.
 */

/** The default cap: the coordinator's own limit on what one worker may hold. */
export const DEFAULT_DEPTH_CAP = LIMITS.capacity

/** Recent measurements the rule looks at. */
export const DEPTH_WINDOW = 8

export interface DepthInput {
  /** Wall seconds of recent preparations that needed the agent (explore, rebase), oldest first. */
  agentSeconds: readonly number[]
  /** How long each agent preparation still running has been at it: a lower bound on its time. */
  runningAgentSeconds: readonly number[]
  /** Wall seconds of recent trainer runs, oldest first. */
  trainSeconds: readonly number[]
  /** The training budget: the shortest a run can take, used until a run was measured. */
  budgetSeconds: number
  /** Most units to hold; 1 turns pipelining off. */
  cap: number
}

export function pipelineDepth(i: DepthInput): number {
  const cap = Math.max(1, Math.min(LIMITS.capacity, Math.floor(i.cap)))
  if (cap <= 2) return cap
  if (i.agentSeconds.length === 0) return cap
  const slowest = Math.max(...i.agentSeconds.slice(-DEPTH_WINDOW), ...i.runningAgentSeconds)
  const training = i.trainSeconds.length ? median(i.trainSeconds.slice(-DEPTH_WINDOW)) : i.budgetSeconds
  if (!(training > 0)) return cap
  return Math.min(cap, Math.max(2, 1 + Math.ceil(slowest / training)))
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}

/**
 * The measurements behind `pipelineDepth`, kept as a worker goes: when each agent preparation
 * started and ended, and how long each training run took. No I/O; the clock is injected.
 */
export class DepthGauge {
  private readonly agent: number[] = []
  private readonly training: number[] = []
  private readonly running = new Map<string, number>()

  constructor(private readonly o: { cap: number; budgetSeconds: () => number; now?: () => number }) {}

  private now(): number {
    return this.o.now?.() ?? performance.now()
  }

  agentStarted(id: string): void {
    this.running.set(id, this.now())
  }

  /** The preparation ended; `measured` false when it did not finish (failed, stopped). */
  agentEnded(id: string, measured = true): void {
    const since = this.running.get(id)
    if (since === undefined) return
    this.running.delete(id)
    if (measured) push(this.agent, (this.now() - since) / 1000)
  }

  trained(seconds: number): void {
    push(this.training, seconds)
  }

  /** For the log: what the depth was chosen from. */
  describe(): string {
    const now = this.now()
    const agent = [...this.agent, ...[...this.running.values()].map(t => (now - t) / 1000)]
    const f = (x: number) => `${x.toFixed(0)}s`
    return `slowest recent agent ${agent.length ? f(Math.max(...agent)) : 'not measured yet'}, training ${this.training.length ? f(median(this.training)) : 'not measured yet'}`
  }

  depth(): number {
    const now = this.now()
    return pipelineDepth({
      agentSeconds: this.agent,
      runningAgentSeconds: [...this.running.values()].map(t => (now - t) / 1000),
      trainSeconds: this.training,
      budgetSeconds: this.o.budgetSeconds(),
      cap: this.o.cap,
    })
  }
}

function push(xs: number[], x: number): void {
  xs.push(x)
  if (xs.length > DEPTH_WINDOW) xs.shift()
}

/**
 * The depth a lane works to: the gauge's answer, re-read after each measurement and every second
 * (an agent that is still thinking already says it is slow). A change is logged and told to the
 * listeners at once: the pipeline fetches up to it, and `worker join` tells the coordinator, which
 * sends units up to it.
 */
export class LaneDepth {
  private current: number
  private readonly listeners: (() => void)[] = []

  constructor(readonly gauge: DepthGauge, private readonly log: (line: string) => void) {
    this.current = gauge.depth()
  }

  get(): number {
    return this.current
  }

  onChange(listener: () => void): void {
    this.listeners.push(listener)
  }

  recheck(): void {
    const d = this.gauge.depth()
    if (d === this.current) return
    this.log(`pipeline depth ${this.current} -> ${d}: ${this.gauge.describe()}`)
    this.current = d
    for (const l of this.listeners) l()
  }
}

import type { WorkUnit } from '@autoresearch-grid/shared'
import { cardFootprintMb, roomForTwoRuns, type Overlap } from '../runner/lane.ts'

/**
 * Which runs of `worker join` may start up beside another run's *training* (runner/lane.ts,
 * 'training' overlap), and which only beside an evaluation ('evaluation'), by whose code they run.
 *
 * Why it matters: start-up (imports, CUDA, compiling the model, one warm-up step) is off the
 * worker's clock, but it runs on the same GPU and CPUs as the run being timed beside it. A
 * stranger's start-up could keep the GPU busy on purpose for as long as that run trains, so that it
 * trains fewer steps in its budget and scores worse: a rival's verification failed, a parent's
 * baselines made to look bad (DESIGN §11: any contributor may be hostile, and so may their code).
 * So a start-up may overlap training only when its code is code the worker vouches for:
 *   - `explore`: the worker's own researcher's edit of the merged best (the scheduler makes every
 *     explore of the best, coordinator/src/scheduler/next-unit.ts). The edit is the worker's own;
 *     the rest is the merged best, reviewed and accepted by the ratchet;
 *   - `baseline`: the merged best itself, with no edit. Trusting an explore's start-up already
 *     trusts every line of the best it builds on, so a baseline adds no code the worker does not
 *     already vouch for (and the worker already shares a baseline's compile caches across runs:
 *     runner/compile-cache.ts, `trustedCode`);
 *   - `verify` of a candidate whose files are, byte for byte (the source hash, computed here from
 *     the files to run), ones this worker's researcher wrote in an explore: a self-verification,
 *     which only campaigns that allow it hand out.
 * And only beside an evaluation:
 *   - any other `verify`: another contributor's unmerged candidate;
 *   - `rebase`: another contributor's unmerged idea (its diff three-way merged onto the best, or
 *     re-implemented by the agent with that diff as its reference);
 *   - anything on a card without room for two runs (runner/lane.ts, `roomForTwoRuns`: start-ups
 *     beside training failed for want of memory where two runs did not fit, measured). Until a run
 *     is measured the line is the seed's (64 GB); then it is twice what the last run of the
 *     worker's own code held at its peak (its trainer's peak_vram_mb), so a campaign whose best
 *     grew past half the card stops overlapping instead of failing start-ups and redoing them
 *     alone. Only the worker's own runs set it: a stranger's train.py reports its own peak, and a
 *     lie there would make the worker start beside training where two runs do not fit. `worker
 *     solo` uses the same rule: its runs are all the volunteer's own (baselines and explores).
 *
 * What is accepted, and why it is bounded:
 *   - the run timed beside an own start-up may be someone else's (a rival's verification). The
 *     start-up is the worker's trusted code, so it cannot be made hostile; it does take CPU (the
 *     compiler) and a short GPU burst (the warm-up step) from the timed run, as every run of
 *     `worker solo` accepts. It lands on baselines, explores and verifications alike (it depends on
 *     which unit comes *next*, not on the one timed), so it slows no kind of run more than another;
 *   - memory: a run whose training fails beside such a start-up trains again alone
 *     (runner/measure.ts), so a rival's verification is never failed by the worker's start-up;
 *   - the researcher reads text from other contributors (hypotheses, swarm memory): a hostile
 *     hypothesis could try to talk an LLM researcher into writing a start-up that hogs the GPU. The
 *     static policy (safety/policy.ts) lints what it writes, but is no boundary; the harm is the
 *     one above (a slower neighbour, never a number bent by code the run measures), it lasts one
 *     start-up, and it is the worker's own agent's output that the worker's owner can read in its
 *     report. The heuristic researcher only changes constants, and cannot be talked into anything.
 */
export class StartUpOverlap {
  /** Source hashes of the worker's own explore runs, newest last (bounded). */
  private readonly written: string[] = []
  /** peak_vram_mb of the last measured run of the worker's own code; null before one. */
  private lastPeakMb: number | null = null

  /**
   * `cardMb`: the GPU's memory (runner/lane.ts, `roomForTwoRuns`). `say` hears when the room for two
   * runs changes with a measured peak.
   */
  constructor(private readonly cardMb: number, private readonly remember = 256, private readonly say: (line: string) => void = () => {}) {}

  /** Whether the card holds a training run and another run's start-up, as far as is known now. */
  get roomForTwo(): boolean {
    return roomForTwoRuns(this.cardMb, this.lastPeakMb)
  }

  /** What the start-up of `unit`'s run, with files of hash `sourceHash`, may overlap. Remembers the worker's own explore code. */
  overlapFor(unit: Pick<WorkUnit, 'kind'>, sourceHash: string): Overlap {
    if (unit.kind === 'explore') this.wrote(sourceHash)
    return this.roomForTwo && this.own(unit, sourceHash) ? 'training' : 'evaluation'
  }

  /** A run of `unit` (files of hash `sourceHash`) was measured, and its trainer reported a peak of `peakMb`. */
  measured(unit: Pick<WorkUnit, 'kind'>, sourceHash: string, peakMb: number | null | undefined): void {
    if (!this.own(unit, sourceHash) || typeof peakMb !== 'number' || !Number.isFinite(peakMb) || peakMb <= 0) return
    const before = this.roomForTwo
    this.lastPeakMb = peakMb
    if (this.roomForTwo !== before) {
      const held = `the last run of its own code held ${(cardFootprintMb(peakMb) / 1024).toFixed(1)} GiB of the card at its peak (${(this.cardMb / 1024).toFixed(1)} GiB)`
      this.say(this.roomForTwo ? `next start-ups of its own code beside training again: ${held}, two fit` : `next start-ups beside evaluation only: ${held}, two do not fit`)
    }
  }

  /** Code the worker vouches for: its own researcher's edit of the best, the best itself, or a verification of its own edit. */
  private own(unit: Pick<WorkUnit, 'kind'>, sourceHash: string): boolean {
    return unit.kind === 'explore' || unit.kind === 'baseline' || (unit.kind === 'verify' && this.written.includes(sourceHash))
  }

  private wrote(hash: string): void {
    if (this.written.includes(hash)) return
    this.written.push(hash)
    if (this.written.length > this.remember) this.written.shift()
  }
}

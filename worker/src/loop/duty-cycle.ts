/**
 * The GPU duty cycle: seconds the trainer ran over seconds the worker had work in hand. Time with
 * nothing to do (the coordinator has no units) is not the worker's to waste, so it is left out;
 * time the agent spends while the GPU waits is exactly what pipelining removes, so it counts.
 */
export class DutyCycle {
  private trainingMs = 0
  private heldMs = 0
  private trainingSince: number | null = null
  private heldSince: number | null = null
  private holding = 0

  constructor(private readonly now: () => number = () => performance.now()) {}

  /** A unit came into (+1) or left (-1) the worker's hands. */
  hold(delta: 1 | -1): void {
    const before = this.holding
    this.holding = Math.max(0, this.holding + delta)
    if (before === 0 && this.holding > 0) this.heldSince = this.now()
    if (before > 0 && this.holding === 0 && this.heldSince !== null) {
      this.heldMs += this.now() - this.heldSince
      this.heldSince = null
    }
  }

  training(on: boolean): void {
    if (on && this.trainingSince === null) this.trainingSince = this.now()
    if (!on && this.trainingSince !== null) {
      this.trainingMs += this.now() - this.trainingSince
      this.trainingSince = null
    }
  }

  seconds(): { training: number; held: number } {
    const t = this.now()
    const training = this.trainingMs + (this.trainingSince === null ? 0 : t - this.trainingSince)
    const held = this.heldMs + (this.heldSince === null ? 0 : t - this.heldSince)
    return { training: training / 1000, held: held / 1000 }
  }

  /** In [0, 1]; undefined before any work was held. */
  ratio(): number | undefined {
    const { training, held } = this.seconds()
    return held > 0 ? Math.min(1, training / held) : undefined
  }
}

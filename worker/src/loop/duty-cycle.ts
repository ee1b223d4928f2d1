/**
 * The GPU duty cycle, defined honestly (issue 17): budgeted training seconds over wall seconds with
 * work in hand. A run counts the seconds it trained on its data by the worker's clock (clock.ts: go
 * to SAVED), at most its budget; start-up, compilation, waiting, evaluation and the agent's time
 * all count against it. Time with nothing to do (the coordinator has no units) is not the worker's
 * to waste, so it is left out.
 */
export class DutyCycle {
  private trainingSeconds = 0
  private heldMs = 0
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

  /** A run trained this long on its data (by the worker's clock), within `budget`. */
  trained(seconds: number, budget: number): void {
    this.trainingSeconds += Math.max(0, Math.min(seconds, budget))
  }

  seconds(): { training: number; held: number } {
    const held = this.heldMs + (this.heldSince === null ? 0 : this.now() - this.heldSince)
    return { training: this.trainingSeconds, held: held / 1000 }
  }

  /** In [0, 1]; undefined before any work was held. */
  ratio(): number | undefined {
    const { training, held } = this.seconds()
    return held > 0 ? Math.min(1, training / held) : undefined
  }
}

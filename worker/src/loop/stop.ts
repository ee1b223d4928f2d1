/**
 * How a lane's loop ends: the user stops it (`signal`), it has done what it was asked (`done`,
 * which freezes the summary at that moment so that a spare unit's wind-down does not count), or a
 * failure ends it (`fail`, solo: a crashed baseline leaves nothing to improve on).
 */
export class LoopStop<S> {
  private readonly controller = new AbortController()
  private final: S | null = null
  private readonly onUserAbort = () => this.controller.abort(this.user?.reason)

  constructor(private readonly user: AbortSignal | undefined, private readonly current: () => S) {
    user?.addEventListener('abort', this.onUserAbort, { once: true })
  }

  get signal(): AbortSignal {
    return this.controller.signal
  }

  done(): void {
    this.final = this.current()
    this.controller.abort('done')
  }

  fail(err: unknown): void {
    this.controller.abort(err)
  }

  /** The error that ended the loop, if one did. */
  failure(): Error | null {
    const reason: unknown = this.controller.signal.reason
    return reason instanceof Error ? reason : null
  }

  summary(): S {
    return this.final ?? this.current()
  }

  /** Lets go of the user's signal. */
  dispose(): void {
    this.user?.removeEventListener('abort', this.onUserAbort)
  }
}

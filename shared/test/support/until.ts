/**
 * Test support: waiting for something to happen, without a deadline of its own.
 *
 * A test asserts what happened, in what order, never how fast: on a loaded machine (issue 18: two
 * CPU burners beside `npm test` on 2 cores) every deadline shorter than tap's own per-file
 * timeout (.taprc) is a flake, not a finding. So a wait ends when its condition holds, and a wait
 * that never ends is ended by tap's timeout, which fails the subtest that was waiting. So that such
 * a failure says what never came, a wait that lasts long prints what it waits for (and whatever
 * `describe` adds, e.g. a worker's log) on stderr every `reportEveryMs`.
 */
export interface UntilOptions {
  /** Pause between tries (default 250 ms). */
  everyMs?: number
  /** Extra words for the "still waiting" line: the state that might explain the wait. */
  describe?: () => string
  /** How often a long wait says so on stderr (default 60 s). */
  reportEveryMs?: number
}

/** Polls `check` until it gives a truthy value, and returns it. */
export async function until<T>(what: string, check: () => Promise<T | undefined | null | false | '' | 0> | T | undefined | null | false | '' | 0, o: UntilOptions = {}): Promise<T> {
  const started = Date.now()
  let reported = started
  for (;;) {
    const v = await check()
    if (v) return v
    if (Date.now() - reported >= (o.reportEveryMs ?? 60_000)) {
      reported = Date.now()
      process.stderr.write(`# still waiting for ${what} (${Math.round((reported - started) / 1000)} s)${o.describe ? `:\n${o.describe()}` : ''}\n`)
    }
    await sleep(o.everyMs ?? 250)
  }
}

export const sleep = (ms: number): Promise<void> => new Promise(r => setTimeout(r, ms))

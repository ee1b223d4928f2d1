/**
 * Pure: the pause before retry `attempt` (0-based): exponential, capped, with jitter (half to all
 * of the step), so workers that lost the coordinator together do not all come back at one instant.
 */
export function backoffMs(attempt: number, random: () => number = Math.random, baseMs = 1000, capMs = 30_000): number {
  return Math.min(capMs, baseMs * 2 ** attempt) * (0.5 + random() / 2)
}

/** Waits `ms`, or until `signal` aborts, whichever comes first; never rejects. */
export function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>(resolve => {
    const timer = setTimeout(done, ms)
    signal?.addEventListener('abort', done, { once: true })
    function done() {
      clearTimeout(timer)
      signal?.removeEventListener('abort', done)
      resolve()
    }
  })
}

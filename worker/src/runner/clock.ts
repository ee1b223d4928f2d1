import type { Profile } from '@autoresearch-grid/shared'

/**
 * The worker's clock for one training run (docs/SECURITY.md, "The worker's clock"). A run has two
 * phases, told apart by two lines the locked prepare.py prints:
 *   start-up  launch → READY: imports, the model built and compiled on made-up tokens. No training
 *             data exists yet, so nothing learnt here can help; limited only so a hang ends.
 *   training  go → SAVED: the worker hands over the training split at go (gate.ts), and the run
 *             ends when the weights are saved. Limited to the budget plus a little slack for the
 *             last step and the save; past that the worker stops the run and rejects it.
 * The seconds between go and SAVED are what the run trained, by the worker's clock: train.py's
 * own clock is only its account (it may have been bent, e.g. by reassigning time.time).
 */

/** Printed by prepare.py (trainer/prepare.py READY_MARKER, SAVED_MARKER); keep them in step. */
export const READY_MARKER = 'autoresearch: ready for the training data'
export const SAVED_MARKER = 'autoresearch: weights saved'

export type Marker = 'ready' | 'saved'

/** Pure: which marker a line of the trainer's output is, if any. */
export function markerOf(line: string): Marker | null {
  const text = line.trim()
  return text === READY_MARKER ? 'ready' : text === SAVED_MARKER ? 'saved' : null
}

export interface ClockLimits {
  budgetSeconds: number
  /** Launch to READY. */
  startupSeconds: number
  /** Past the budget, from go to SAVED: the last step, the summary and writing the weights. */
  slackSeconds: number
}

/**
 * Pure: the limits for a profile. The slack is what a run may train past its budget, so it is kept
 * small: on a GPU the last step (< 1 s) and the save (~0.3 s for 50M parameters) fit in 5 s with
 * room. On a CPU (the cpu-tiny profile: tests and demos) it is wider, because there the first,
 * untimed step of an honest run took 11 s on a 2-core machine at load 25 (seen while building
 * this): a CPU campaign's clock is looser by those seconds, a GPU campaign's is not.
 * Start-up is generous: a cold compile of a changed model takes 20–60 s, a loaded CPU box's torch
 * import 10 s and more, and no data is there to learn from while it lasts.
 */
export function clockLimits(profile: Profile, budgetSeconds: number): ClockLimits {
  return profile === 'gpu'
    ? { budgetSeconds, startupSeconds: 600, slackSeconds: Math.round(5 + 0.02 * budgetSeconds) }
    : { budgetSeconds, startupSeconds: 300, slackSeconds: Math.round(Math.max(20, 0.5 * budgetSeconds)) }
}

/** Times in milliseconds on one monotonic clock (performance.now); null where the run never got there. */
export interface ClockTimes {
  launched: number
  ready: number | null
  go: number | null
  saved: number | null
  ended: number
}

export type ClockLimit = 'startup' | 'budget'

export interface ClockReading {
  /** Launch to READY (or to the end, if it never got ready). */
  startupSeconds: number
  /** go to SAVED (or to the end, if it never saved); null if it never got the data. */
  trainingSeconds: number | null
  /** A limit the run went past, or null. */
  over: ClockLimit | null
}

/** Pure: what the clock says about a finished run. */
export function readClock(t: ClockTimes, limits: ClockLimits): ClockReading {
  const startupSeconds = ((t.ready ?? t.ended) - t.launched) / 1000
  const trainingSeconds = t.go === null ? null : ((t.saved ?? t.ended) - t.go) / 1000
  let over: ClockLimit | null = null
  if (t.ready === null && startupSeconds >= limits.startupSeconds) over = 'startup'
  if (trainingSeconds !== null && trainingSeconds > limits.budgetSeconds + limits.slackSeconds) over = 'budget'
  if (t.go !== null && t.saved === null && trainingSeconds !== null && trainingSeconds >= limits.budgetSeconds + limits.slackSeconds) over = 'budget'
  return { startupSeconds, trainingSeconds, over }
}

/** Pure: the words for a run the clock stopped. */
export function describeOver(over: ClockLimit, limits: ClockLimits): string {
  return over === 'startup'
    ? `the trainer did not ask for its training data within ${limits.startupSeconds}s of starting (start-up hung?)`
    : `training did not end within its budget: the worker's clock stopped it ${limits.budgetSeconds + limits.slackSeconds}s after handing over the data ` +
      `(budget ${limits.budgetSeconds}s + ${limits.slackSeconds}s for the last step and saving the weights); a run may not train past its budget`
}

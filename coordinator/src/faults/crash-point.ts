/**
 * Fault injection for the crash tests (coordinator/test/faults): with
 * `AUTORESEARCH_TEST_CRASH_AT=<point>` in its environment the coordinator SIGKILLs itself when it
 * reaches that point, a crash at an exact moment that a kill from outside only hits by luck.
 * Nothing else sets the variable; unset, a crash point costs one environment lookup.
 *
 * Points: `experiment-recorded` (units/report.ts: a new experiment's transaction has committed,
 * nothing after it has run, not even its ref's write); `review-approved` (review/verdicts.ts: the approval is recorded, the
 * merge has not begun).
 */
export function crashPoint(name: 'experiment-recorded' | 'review-approved'): void {
  if (process.env.AUTORESEARCH_TEST_CRASH_AT === name) process.kill(process.pid, 'SIGKILL')
}

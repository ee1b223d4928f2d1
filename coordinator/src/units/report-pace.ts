import { stateKey, type Ctx } from '../context.ts'
import type { Campaign } from '../campaigns/campaigns.ts'
import { UserError } from '../errors.ts'
import { DEFAULT_MAX_OPEN_UNITS } from './assign.ts'

/**
 * How fast one contributor's reports may add code to the coordinator's git store and database.
 * A report of a changed candidate stores its files as a commit and its diff as a row (up to 256 KiB
 * each), and nothing bounded how often: one token's eight workers, each reporting every unit at once
 * as a crash with 120 KB of random text, stored 1,875 commits in 10 s, 60 MB of data dir that never
 * goes away (test/hostile/report-flood.test.ts), with the event loop busy the whole time.
 *
 * The bound is what real work can reach. A contributor holds at most `maxOpenUnitsPerContributor`
 * units at once (units/assign.ts), and a run trains for at least budget·(1 − tolerance), the
 * shortest time the ratchet accepts; so within such a window its workers can report about that
 * many trained runs. Twice as many are let through (crashes come sooner), per campaign; a report
 * past it is refused as `rate-limited`, which a worker retries later (worker/src/loop/deliver.ts:
 * TOO_MANY_REQUESTS is not final), so no honest result is lost, only delayed. Every report counts
 * (fourth red team), since every one is a row for good: one of unchanged code, a reuse, a
 * baseline or a verification stores no code, but its row keeps a log tail and notes (~20 KiB), and
 * a reuse kept a copy of the earlier diff. Uncounted, one token's two workers stored 2,293 rows of
 * unchanged code in 5 s, 347 MB of data dir, and one worker that said hello as a hardware class of
 * its own, whose baselines only it could take, crashed 1,299 of them in 4 s, each one queued again
 * (test/hostile/row-flood.test.ts).
 */
const PACE = stateKey('reports per contributor and campaign', () => new Map<string, number[]>())

/** Reports a contributor may make in one window of a campaign. */
export function reportsPerWindow(ctx: Pick<Ctx, 'settings'>): number {
  return 2 * (ctx.settings.maxOpenUnitsPerContributor ?? DEFAULT_MAX_OPEN_UNITS)
}

/** The window, in ms: the shortest training the ratchet accepts in the campaign. */
export function paceWindowMs(c: Campaign): number {
  return c.spec.budgetSeconds * (1 - c.spec.noise.budgetTolerance) * 1000
}

/** Counts one report, or refuses it (UserError `rate-limited`) when the window is full. */
export function takeReport(ctx: Pick<Ctx, 'settings' | 'state' | 'now'>, contributorId: string, c: Campaign): void {
  const pace = ctx.state.of(PACE)
  const key = `${contributorId}\0${c.name}`
  const now = ctx.now()
  const since = now - paceWindowMs(c)
  const times = (pace.get(key) ?? []).filter(t => t > since)
  const max = reportsPerWindow(ctx)
  if (times.length >= max) {
    pace.set(key, times)
    const wait = Math.ceil((times[0] - since) / 1000)
    throw new UserError(`your workers reported ${times.length} runs to "${c.name}" in the last ${Math.round(paceWindowMs(c) / 1000)} s, ` +
      `more than ${max / 2} units held at once can train in that time: this report is refused for now; send it again in ${wait} s or more`, 'rate-limited')
  }
  times.push(now)
  pace.set(key, times)
  // Contributors who stopped reporting are forgotten once their window is empty.
  if (pace.size > 10_000) for (const [k, ts] of pace) if (!ts.length || ts[ts.length - 1] <= since) pace.delete(k)
}

/**
 * One grid row (bench/ratchet/grid.ts, 16 workers on 4 classes, as grid-why.ts plays it) with the
 * sequential knobs overridden, for trying a change before it earns a row in grid-run.ts:
 *   npx tsx bench/ratchet/grid-try.ts [policy] [seeds] [30% | 1%] [sequential overrides as JSON] [baselines per class] [own-class | every-class | as-decided] [two | cusum] [run-on]
 * e.g. `npx tsx bench/ratchet/grid-try.ts parallel 6 1% '{"runsPerLook":2}'`; the last, GridConfig's carryFromOrigin
 * (absent or `as-decided`: the evidence the stale decision handed on); `two`: the suspect rule before session 14
 * (two unreproduced claims above the cap); `run-on`: verification runs of a closed candidate go on to their report, as
 * before session 15 (GridConfig's cancelClosedRuns false). One line out, all campaigns together, with the honest contributors flagged.
 */
import type { RatchetPolicy } from '../../coordinator/src/ratchet/index.ts'
import { gridCampaign, ONE_PERCENT_REAL, simulateGrid, type GridConfig } from './grid.ts'

const [policy = 'parallel', seeds = '3', prior = '30%', overrides = '{}', baselines = '4', carryArg, rule, runOn] = process.argv.slice(2)
const carry = carryArg === 'as-decided' ? undefined : carryArg
const effects = prior === '1%' ? ONE_PERCENT_REAL : undefined
const sequential = JSON.parse(overrides)
const rs = Array.from({ length: Number(seeds) }, (_, i) => simulateGrid(gridCampaign({
  seed: i + 1, policy: policy as RatchetPolicy, effects, sequential, baselineRuns: Number(baselines),
  carryFromOrigin: carry as GridConfig['carryFromOrigin'], unreproducedRule: rule === 'two' ? 'two' : undefined, cancelClosedRuns: runOn !== 'run-on',
})))
const sum = (f: (r: (typeof rs)[number]) => number) => rs.reduce((a, r) => a + f(r), 0)
const runs = sum(r => r.runs)
const merges = sum(r => r.merges.length)
const big = rs.flatMap(r => r.ideas.filter(i => i.sigmas < -2 && i.outcome !== 'open'))
const pct = (a: number, b: number) => `${((100 * a) / Math.max(1, b)).toFixed(1)} %`
console.log(`${policy}, ${prior} real, ${overrides}, ${baselines} baselines, carried ${carry ?? 'as decided'}, suspects ${rule === 'two' ? 'after two' : 'by CUSUM'}, ${seeds} seeds: ${(runs / merges).toFixed(1)} runs / merge, ${merges} merges, ` +
  `${sum(r => r.merges.filter(m => m.trueEffect >= 0).length)} false, ${pct(big.filter(i => i.outcome === 'merged').length, big.length)} of gains > 2σ kept, ` +
  `${pct(sum(r => r.staleRuns), runs)} runs on stale candidates, ${pct(sum(r => r.lateRuns), runs)} late (${pct(sum(r => r.lateRunsMoved), runs)} of a moved candidate, ${pct(sum(r => r.lateRunsWasted), runs)} counting for nothing), ` +
  `${runOn === 'run-on' ? 'closed candidates\' runs go on' : `${pct(sum(r => r.cancelledRuns), runs)} cancelled, freeing ${pct(sum(r => r.cancelledSeconds), sum(r => r.workers * r.wallSeconds))} of GPU time`}, ${(sum(r => r.wallSeconds) / rs.length / 3600).toFixed(1)} h / campaign, ` +
  `${(sum(r => r.runsByKind.baseline) / merges).toFixed(1)} baselines / merge, ${(sum(r => r.gain) / sum(r => (r.workers * r.wallSeconds) / 3600)).toFixed(4)} bpb / GPU-hour, ` +
  `${sum(r => r.suspects.length)} honest flagged (${sum(r => r.suspectsWaiting)} candidates waiting); per campaign runs / merge and flagged: ${rs.map(r => `${(r.runs / Math.max(1, r.merges.length)).toFixed(0)}/${r.suspects.length}`).join(' ')}`)

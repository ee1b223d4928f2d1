/**
 * Where a grid row's verification runs go, idea by idea (docs/RATCHET.md, "Third round, session
 * 13"): ideas by true size and how they ended, with their verification runs per merge, the share
 * made while the candidate's parent was no longer the best, and runs and hops per idea.
 *   npx tsx bench/ratchet/grid-why.ts [policy] [seeds] [1%]
 * With `--trace N`, prints the decisions of the first N gains ≥ 2σ that were lost after verification.
 */
import type { RatchetPolicy } from '../../coordinator/src/ratchet/index.ts'
import { gridCampaign, ONE_PERCENT_REAL, simulateGrid, type GridResult } from './grid.ts'

const args = process.argv.slice(2)
const traceAt = args.indexOf('--trace')
const traces = traceAt >= 0 ? Number(args.splice(traceAt, 2)[1]) : 0
const policy = (args[0] ?? 'pooled') as RatchetPolicy
const seeds = Number(args[1] ?? 3)
const effects = args[2] === '1%' ? ONE_PERCENT_REAL : undefined
const rs: GridResult[] = Array.from({ length: seeds }, (_, i) => simulateGrid(gridCampaign({ seed: i + 1, policy, effects, trace: traces > 0 })))
const merges = rs.reduce((a, r) => a + r.merges.length, 0)
const ending = (last = ''): string => last.includes('not decisive after') ? 'undecided at the cap' : last.includes('against a gain') ? 'evidence against'
  : last.includes('without the runs') ? 'without-any-one guard' : last.includes('first look') ? 'first look' : last.split(':')[0] || 'none'
const rows = new Map<string, { ideas: number; runs: number; moved: number; hops: number }>()
for (const r of rs) for (const i of r.ideas) {
  const size = i.sigmas >= 0 ? 'null or harmful' : i.sigmas > -2 ? 'gain < 2σ' : 'gain ≥ 2σ'
  const key = `${size} | ${i.outcome === 'closed' ? ending(i.last) : i.outcome}`
  const row = rows.get(key) ?? { ideas: 0, runs: 0, moved: 0, hops: 0 }
  row.ideas++
  row.runs += i.verifies
  row.moved += i.moved
  row.hops += i.hops
  rows.set(key, row)
}
console.log(`${policy}, ${seeds} campaigns, ${merges} merges\n\n| idea | ended | ideas | verification runs / merge | of them on a replaced parent | runs / idea | hops / idea |\n|---|---|---|---|---|---|---|`)
for (const [key, v] of [...rows].sort((a, b) => b[1].runs - a[1].runs))
  console.log(`| ${key} | ${v.ideas} | ${(v.runs / merges).toFixed(1)} | ${(v.moved / merges).toFixed(1)} | ${(v.runs / v.ideas).toFixed(1)} | ${(v.hops / v.ideas).toFixed(2)} |`)
const lost = rs.flatMap(r => r.ideas).filter(i => i.sigmas <= -2 && i.outcome === 'closed' && i.verifies > 0).slice(0, traces)
for (const i of lost) console.log(`\n${i.sigmas.toFixed(2)}σ, ${i.verifies} verification runs, ${i.hops} hops:\n${(i.trace ?? []).join('\n')}`)

/**
 * Issue 17's grid campaigns (bench/ratchet/grid.ts) for the fixed, sequential, pooled and parallel policies side by
 * side; prints a markdown table and writes it into docs/RATCHET.md between its grid markers.
 *   npx tsx bench/ratchet/grid-run.ts [seeds]
 * Seeded: the same command gives the same numbers on any machine.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import type { RatchetPolicy, RatchetSettings } from '../../coordinator/src/ratchet/index.ts'
import { DEFAULT_EFFECTS, type EffectModel } from './simulate.ts'
import { gridCampaign, ONE_PERCENT_REAL as ONE_PERCENT, simulateGrid, type GridConfig, type GridResult } from './grid.ts'

const SEEDS = Number(process.argv[2] ?? 2)
const DOC = new URL('../../docs/RATCHET.md', import.meta.url)

interface Row { label: string; policy: RatchetPolicy; effects: EffectModel; workers: number; baselineRuns: number; sequential?: RatchetSettings['sequential']; carryFromOrigin?: GridConfig['carryFromOrigin'] }

const config = (row: Row, seed: number): GridConfig => gridCampaign({ seed, ...row })

function line(row: Row, rs: GridResult[]): string {
  const sum = (f: (r: GridResult) => number) => rs.reduce((a, r) => a + f(r), 0)
  const pct = (a: number, b: number) => (b ? `${((100 * a) / b).toFixed(1)} %` : '–')
  const runs = sum(r => r.runs)
  const merges = sum(r => r.merges.length)
  const falseM = sum(r => r.merges.filter(m => m.trueEffect >= 0).length)
  const big = rs.flatMap(r => r.ideas.filter(i => i.sigmas < -2 && i.outcome !== 'open'))
  const gpuHours = sum(r => (r.workers * r.wallSeconds) / 3600)
  const perCampaign = rs.map(r => r.runs / Math.max(1, r.merges.length))
  const spread = `${Math.min(...perCampaign).toFixed(0)}–${Math.max(...perCampaign).toFixed(0)}`
  return `| ${row.label} | ${row.workers} | ${(runs / merges).toFixed(1)} (${spread}) | ${(merges / rs.length).toFixed(1)} | ${pct(falseM, merges)} | ${pct(big.filter(i => i.outcome === 'merged').length, big.length)} | ` +
    `${pct(sum(r => r.staleRuns), runs)} | ${pct(sum(r => r.staleRunsDropped), runs)} | ${pct(sum(r => r.screenedStale), sum(r => r.screenedClaims))} | ` +
    `${pct(sum(r => r.runsByKind.baseline), runs)} | ${pct(sum(r => r.runsByKind.verify), runs)} | ${(sum(r => r.gain) / gpuHours).toFixed(4)} | ` +
    `${pct(sum(r => r.lateRuns), runs)} (${pct(sum(r => r.lateRunsMoved), runs)}) | ${sum(r => r.suspects.length)} (${sum(r => r.suspectsWaiting)}) |`
}

/**
 * Where a row's runs go, per merge: explorations, baselines, rebases, and the verification runs of
 * ideas by their true effect (in σ) — the instrument for attacking the biggest share.
 */
function breakdown(row: Row, rs: GridResult[]): string {
  const merges = rs.reduce((a, r) => a + r.merges.length, 0)
  const per = (n: number) => (n / merges).toFixed(1)
  const kinds = (k: keyof GridResult['runsByKind']) => rs.reduce((a, r) => a + r.runsByKind[k], 0)
  const verifies = (f: (sigmas: number) => boolean) => rs.reduce((a, r) => a + r.ideas.filter(i => f(i.sigmas)).reduce((b, i) => b + i.verifies, 0), 0)
  const kept = (f: (sigmas: number) => boolean) => rs.reduce((a, r) => a + r.ideas.filter(i => f(i.sigmas) && i.outcome === 'merged').length, 0)
  const big = (x: number) => x <= -2
  const moved = rs.reduce((a, r) => a + r.ideas.reduce((b, i) => b + i.moved, 0), 0)
  return `| ${row.label} | ${row.workers} | ${per(kinds('explore'))} | ${per(kinds('baseline'))} | ${per(kinds('rebase'))} | ${per(verifies(x => x >= 0))} | ` +
    `${per(verifies(x => x < 0 && x > -2))} | ${per(verifies(big))} | ${(verifies(big) / Math.max(1, kept(big))).toFixed(1)} | ${((100 * moved) / Math.max(1, kinds('verify'))).toFixed(0)} % |`
}

const rows: Row[] = []
for (const [prior, effects] of [['30 % real', DEFAULT_EFFECTS], ['1 % real', ONE_PERCENT]] as const)
  for (const workers of [16, 1])
    // `pooled` with one class is `sequential`: it has rows at 16 workers only.
    for (const policy of workers > 1 ? ['fixed', 'sequential', 'pooled', 'parallel'] as const : ['fixed', 'sequential'] as const)
      rows.push({ label: `${prior}, ${policy}`, policy, effects, workers, baselineRuns: 4 })
rows.splice(2, 0, { label: '30 % real, sequential, 8 baselines', policy: 'sequential', effects: DEFAULT_EFFECTS, workers: 16, baselineRuns: 8 })
// Parent runs on demand (issue 17): with them, the scheduler's standing baselines can be fewer.
const onDemand = { parentOnDemand: true }
rows.splice(3, 0, { label: '30 % real, sequential, parent on demand', policy: 'sequential', effects: DEFAULT_EFFECTS, workers: 16, baselineRuns: 4, sequential: onDemand },
  { label: '30 % real, sequential, parent on demand, 2 baselines', policy: 'sequential', effects: DEFAULT_EFFECTS, workers: 16, baselineRuns: 2, sequential: onDemand })
const one16 = rows.findIndex(r => r.label === '1 % real, sequential' && r.workers === 16)
rows.splice(one16 + 1, 0, { label: '1 % real, sequential, parent on demand', policy: 'sequential', effects: ONE_PERCENT, workers: 16, baselineRuns: 4, sequential: onDemand },
  { label: '1 % real, sequential, parent on demand, 2 baselines', policy: 'sequential', effects: ONE_PERCENT, workers: 16, baselineRuns: 2, sequential: onDemand })
// Both of session 12's changes together: pooled evidence and parent runs on demand.
for (const [prior, effects] of [['30 % real', DEFAULT_EFFECTS], ['1 % real', ONE_PERCENT]] as const) {
  const at = rows.findIndex(r => r.label === `${prior}, parallel`)
  rows.splice(at + 1, 0, { label: `${prior}, pooled, parent on demand, 2 baselines`, policy: 'pooled', effects, workers: 16, baselineRuns: 2, sequential: onDemand })
}

// Session 14: carried evidence as the coordinator recomputes it from the origin's rows, before (the
// origin's class alone) and since (every approved class under the pooled policies).
for (const [prior, effects] of [['30 % real', DEFAULT_EFFECTS], ['1 % real', ONE_PERCENT]] as const)
  for (const policy of ['pooled', 'parallel'] as const) {
    const at = rows.findIndex(r => r.label === `${prior}, ${policy}`)
    rows.splice(at + 1, 0, { label: `${prior}, ${policy}, carried from the origin's class (production before)`, policy, effects, workers: 16, baselineRuns: 4, carryFromOrigin: 'own-class' },
      { label: `${prior}, ${policy}, carried from every class (production now)`, policy, effects, workers: 16, baselineRuns: 4, carryFromOrigin: 'every-class' })
  }

const started = Date.now()
const table = ['| prior, policy | workers | runs / merge (spread) | merges / campaign | false accepts | gains > 2σ kept | runs on stale candidates | of which evidence dropped | screened claims gone stale | baseline runs | verify runs | true gain / GPU-hour (bpb) | late verification runs (of a moved candidate) | honest contributors flagged as suspects (their candidates left waiting) |',
  '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|']
const where = ['| prior, policy | workers | explorations | baselines | rebases | verifying null or harmful ideas | verifying gains < 2σ | verifying gains ≥ 2σ | verification runs per gain ≥ 2σ kept | verification runs on a replaced parent |',
  '|---|---|---|---|---|---|---|---|---|---|']
for (const row of rows) {
  const rs = Array.from({ length: SEEDS }, (_, i) => simulateGrid(config(row, i + 1)))
  table.push(line(row, rs))
  where.push(breakdown(row, rs))
  console.log(table.at(-1))
  console.log(where.at(-1))
}
const seconds = ((Date.now() - started) / 1000).toFixed(0)
const block = `<!-- grid: begin -->\n\`npx tsx bench/ratchet/grid-run.ts ${SEEDS}\` (${SEEDS} seeded campaigns per row, 1000 explorations each; ${seconds} s here). ` +
  `Runs per merge: all campaigns of the row together (the lowest–highest campaign in brackets).\n\n${table.join('\n')}\n\n` +
  `Where the runs go, per merge (all campaigns of the row together):\n\n${where.join('\n')}\n<!-- grid: end -->`
const doc = readFileSync(DOC, 'utf8')
if (doc.includes('<!-- grid: begin -->')) writeFileSync(DOC, doc.replace(/<!-- grid: begin -->[\s\S]*<!-- grid: end -->/, block))
else console.log('docs/RATCHET.md has no grid markers; table not written')

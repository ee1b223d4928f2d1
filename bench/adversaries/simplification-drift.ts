/**
 * How often the ratchet merges a deletion as a "simplification" (docs/RATCHET.md, "Simplifications";
 * docs/SECURITY.md). A candidate that deletes lines (linesDelta < 0) is judged by the fixed rule under
 * every policy (ratchet/decide.ts judgeMeasured), and merges as a simplification when the other
 * contributors' runs show it no worse than the parent by more than minDelta: with the bound
 * (simplificationZ 1, the default since session 18) Δ + 1·SE ≤ minDelta, before it the point estimate
 * alone (simplificationZ 0). Two authors: a forger, whose claim is 0.5σ better than the parent
 * whatever the truth, and an honest one, whose claim is a run like any other. Honest verifiers and
 * baselines measure the truth, `effect` σ from the parent. Pure layer, the production decide().
 *
 *   nice -n 19 npx tsx bench/adversaries/simplification-drift.ts [trials]   # SZ=0.5 …: another bound than 1 in the "now" columns
 */
import { decide, DEFAULT_RATCHET_SETTINGS } from '../../coordinator/src/ratchet/index.ts'

const sigma = 0.01, mu = 1.5
const gauss = () => { let u = 0; while (!u) u = Math.random(); return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * Math.random()) }

function trial(effect: number, forged: boolean, simplificationZ: number): string {
  const settings = { ...DEFAULT_RATCHET_SETTINGS, policy: 'parallel' as const, budgetSeconds: 300, simplificationZ }
  const parentRuns = ['h1', 'h2', 'h3', 'h4'].map(c => ({ valBpb: mu + sigma * gauss(), contributorId: c }))
  const truth = () => mu + effect * sigma + sigma * gauss()
  const samples = [{ valBpb: forged ? mu - 0.5 * sigma : truth(), workerId: 'wm', contributorId: 'm', trainingSeconds: 300 }]
  const others = ['h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'h7', 'h8']
  for (let round = 0; round < 20; round++) {
    const d = decide({ candidate: { authorId: 'm', samples, linesDelta: -1 }, parentSamples: parentRuns.map(r => r.valBpb), parentRuns, sigma, parentIsBest: true, settings, realRate: 0.05 } as never)
    if (d.kind === 'merge') return d.simplification ? 'simplification' : 'improvement'
    if (d.kind !== 'verify') return d.kind
    const excl = new Set(d.excludeContributorIds)
    for (let i = 0; i < d.needed; i++) {
      const c = others.find(o => !excl.has(o) && !samples.some(s => s.contributorId === o)) ?? others[(round + i) % others.length]
      samples.push({ valBpb: truth(), workerId: 'w' + c, contributorId: c, trainingSeconds: 300 })
    }
  }
  return 'undecided'
}

const n = Number(process.argv[2] ?? 4000)
const pct = (k: number) => `${(100 * k / n).toFixed(1)} %`
console.log(`${n} trials per cell; σ ${sigma}, minDelta ${DEFAULT_RATCHET_SETTINGS.minDelta}; the cell is the share merged as a simplification (as an improvement, where any, in brackets)\n`)
console.log('| true effect of the deletion | forged claim, point estimate (before) | forged claim, bound (now) | honest claim, point estimate (before) | honest claim, bound (now) |')
console.log('|---|---:|---:|---:|---:|')
for (const effect of [-1, -0.5, -0.25, 0, 0.25, 0.5, 1, 2]) {
  const cells = [true, false].flatMap(forged => [0, Number(process.env.SZ ?? 1)].map(z => {
    const out: Record<string, number> = {}
    for (let i = 0; i < n; i++) { const k = trial(effect, forged, z); out[k] = (out[k] ?? 0) + 1 }
    return pct(out.simplification ?? 0) + (out.improvement ? ` (${pct(out.improvement)})` : '')
  }))
  console.log(`| ${effect > 0 ? '+' : ''}${effect}σ (${effect > 0 ? 'worse' : effect < 0 ? 'better' : 'null'}) | ${cells.join(' | ')} |`)
}

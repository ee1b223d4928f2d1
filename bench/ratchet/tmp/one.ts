import { DEFAULT_RATCHET_SETTINGS } from '../../../coordinator/src/ratchet/index.ts'
import { DEFAULT_EFFECTS } from '../simulate.ts'
import { simulateGrid } from '../grid.ts'
const policy = (process.argv[2] ?? 'sequential') as any
const workers = Number(process.argv[3] ?? 16)
const seeds = Number(process.argv[4] ?? 1)
const seq = JSON.parse(process.argv[5] ?? "{}")
const baselineRuns = Number(process.argv[6] ?? 4)
const one = workers === 1
for (let seed = 1; seed <= seeds; seed++) {
  const t = Date.now()
  const r = simulateGrid({ seed, sigma: 0.038, workers, classes: one ? 1 : 4, contributors: one ? 1 : 8, explorations: 1000, effects: DEFAULT_EFFECTS,
    settings: { ...DEFAULT_RATCHET_SETTINGS, policy, allowSelfVerification: one, sequential: seq }, baselineRuns, cleanMergeRate: 0.8, interaction: 0.15, outliers: 0.03, priorSigma: 0.01, redecideOnMove: false })
  const m = r.merges.length
  const big = r.ideas.filter(i => i.sigmas < -2 && i.outcome !== 'open')
  console.log(JSON.stringify({ seed, ms: Date.now() - t, runs: r.runs, merges: m, rpm: (r.runs / m).toFixed(1), kinds: r.runsByKind, stale: r.staleRuns, dropped: r.staleRunsDropped,
    falseM: r.merges.filter(x => x.trueEffect >= 0).length, bigKept: (big.filter(i => i.outcome === 'merged').length / big.length).toFixed(2), open: r.ideas.filter(i => i.outcome === 'open').length,
    vby: Object.fromEntries(['null','harm','g<1','g1-2','g2-3','g>3'].map(b => { const f = (i: any) => b==='null'? i.sigmas===0 : b==='harm'? i.sigmas>0 : b==='g<1'? i.sigmas<0&&i.sigmas>-1 : b==='g1-2'? i.sigmas<=-1&&i.sigmas>-2 : b==='g2-3'? i.sigmas<=-2&&i.sigmas>-3 : i.sigmas<=-3; const xs = r.ideas.filter(f); return [b, `${xs.length}:v${xs.reduce((a: number, i: any) => a + i.verifies, 0)}:m${xs.filter((i: any) => i.outcome==='merged').length}:o${xs.filter((i: any) => i.outcome==='open').length}`] })),
    gph: (r.gain / (r.workers * r.wallSeconds / 3600)).toFixed(4) }))
}

import { DEFAULT_RATCHET_SETTINGS } from '../../../coordinator/src/ratchet/index.ts'
import { DEFAULT_EFFECTS } from '../simulate.ts'
import { simulateGrid } from '../grid.ts'
const seq = JSON.parse(process.argv[2] ?? '{}')
const r = simulateGrid({ seed: 1, sigma: 0.038, workers: 16, classes: 4, contributors: 8, explorations: Number(process.argv[3] ?? 400), effects: DEFAULT_EFFECTS,
  settings: { ...DEFAULT_RATCHET_SETTINGS, policy: 'sequential', sequential: seq }, baselineRuns: 4, cleanMergeRate: 0.8, interaction: 0.15, outliers: 0.03, priorSigma: 0.01, redecideOnMove: false })
const c = new Map<string, number>()
for (const i of r.ideas.filter(i => i.sigmas <= -2 && i.outcome === 'closed')) { const k = (i.last ?? '').replace(/[-\d.]+/g, '#').slice(0, 70); c.set(k, (c.get(k) ?? 0) + 1) }
console.log([...c].sort((a, b) => b[1] - a[1]).slice(0, 12))
for (const i of r.ideas.filter(i => i.sigmas <= -3 && i.outcome === 'closed').slice(0, 5)) console.log(i.sigmas.toFixed(2), i.verifies, i.last)

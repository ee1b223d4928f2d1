/**
 * How often the ratchet merges a harmful deletion as a "simplification" (docs/SECURITY.md, third
 * round, left open). A candidate that deletes lines (linesDelta < 0) is judged by the fixed rule
 * under every policy (ratchet/decide.ts judgeMeasured), and a simplification merges when the point
 * estimate of its runs, and of the other contributors' runs alone, is within minDelta of the parent:
 * no confidence bound. The author forges a claim a little better than the parent; honest verifiers
 * measure the truth, which is `delta` σ worse. Pure layer, the production decide().
 *
 *   nice -n 19 npx tsx bench/adversaries/simplification-drift.ts
 */
import { decide, DEFAULT_RATCHET_SETTINGS } from '../../coordinator/src/ratchet/index.ts'
const sigma = 0.01, mu = 1.5
const gauss = () => { let u = 0, v = 0; while (!u) u = Math.random(); v = Math.random(); return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v) }
const settings = { ...DEFAULT_RATCHET_SETTINGS, policy: 'parallel' as const, budgetSeconds: 300, priorSigma: sigma }
function trial(delta: number): string {
  const parentRuns = ['h1', 'h2', 'h3', 'h4'].map(c => ({ valBpb: mu + sigma * gauss(), contributorId: c }))
  const samples = [{ valBpb: mu - 0.5 * sigma, workerId: 'wm', contributorId: 'm', trainingSeconds: 300 }] // the forged claim: a little better
  const others = ['h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'h7', 'h8']
  for (let round = 0; round < 20; round++) {
    const d = decide({ candidate: { authorId: 'm', samples, linesDelta: -1 }, parentSamples: parentRuns.map(r => r.valBpb), parentRuns, sigma, parentIsBest: true, settings, realRate: 0.05 } as never)
    if (d.kind !== 'verify') return d.kind
    const excl = new Set(d.excludeContributorIds)
    for (let i = 0; i < d.needed; i++) {
      const c = others.find(o => !excl.has(o) && !samples.some(s => s.contributorId === o)) ?? others[(round + i) % others.length]
      samples.push({ valBpb: mu + delta * sigma + sigma * gauss(), workerId: 'w' + c, contributorId: c, trainingSeconds: 300 })
    }
  }
  return 'undecided'
}
for (const delta of [0, 0.5, 1, 2]) {
  const n = 4000, out: Record<string, number> = {}
  for (let i = 0; i < n; i++) { const k = trial(delta); out[k] = (out[k] ?? 0) + 1 }
  console.log(`true effect +${delta}σ (worse): merged ${(100 * (out.merge ?? 0) / n).toFixed(1)}%`, JSON.stringify(out))
}

/**
 * What a rebase unit's report gained from its origin's evidence when nothing checked that its code
 * was the origin's change (docs/SECURITY.md, fourth red team). Ben's change is truly 3σ better on
 * its old parent (his claim and two other contributors' runs); Mallory reports her own code as its
 * rebase with a forged claim 2σ better than the new best, and honest verifiers measure her code's
 * truth, `delta` σ worse. Carried, her candidate starts from Ben's evidence; not carried, it is an
 * original. Pure layer, the production decide().
 *
 *   nice -n 19 npx tsx bench/adversaries/rebase-carry.ts [parallel|sequential]
 */
import { decide, DEFAULT_RATCHET_SETTINGS, carriedFrom, sequentialSettingsOf } from '../../coordinator/src/ratchet/index.ts'
const sigma = 0.01, mu = 1.5
const gauss = () => { let u = 0, v = 0; while (!u) u = Math.random(); v = Math.random(); return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v) }
const policy = (process.argv[2] ?? 'parallel') as 'parallel'
const settings = { ...DEFAULT_RATCHET_SETTINGS, policy, budgetSeconds: 300, priorSigma: sigma }
const seq = sequentialSettingsOf(policy)
const s = (v: number, c: string) => ({ valBpb: v, workerId: 'w' + c, contributorId: c, trainingSeconds: 300 })
function trial(originEffect: number, delta: number, carry: boolean): string {
  // Ben's origin on the old parent: his claim and cat's and dan's verifications of a real gain.
  const oldParent = ['h1', 'h2', 'h3'].map(c => ({ valBpb: mu + sigma * gauss(), contributorId: c }))
  const originRuns = [s(mu + originEffect * sigma + sigma * gauss(), 'ben'), s(mu + originEffect * sigma + sigma * gauss(), 'cat'), s(mu + originEffect * sigma + sigma * gauss(), 'dan')]
  const carried = carry ? carriedFrom(originRuns, oldParent, sigma, new Set(['ben']), undefined, seq) : undefined
  const mu2 = mu - 0.02
  const parentRuns = ['h1', 'h2', 'h3', 'h4'].map(c => ({ valBpb: mu2 + sigma * gauss(), contributorId: c }))
  const samples = [s(mu2 - 2 * sigma, 'm')] // mallory's forged claim for her own code
  const others = ['h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'h7', 'h8']
  for (let round = 0; round < 20; round++) {
    const d = decide({ candidate: { authorId: 'm', samples, linesDelta: 1, carried, carriedClaim: carry ? { authorId: 'ben', improvement: -originEffect * sigma } : undefined,
      carriedWithout: carry ? (k: string) => carriedFrom(originRuns.filter(r => r.contributorId !== k), oldParent.filter(r => r.contributorId !== k), sigma, new Set(['ben']), undefined, seq) : undefined },
      parentSamples: parentRuns.map(r => r.valBpb), parentRuns, sigma, parentIsBest: true, settings, realRate: 0.05 } as never)
    if (d.kind !== 'verify') return d.kind
    const excl = new Set(d.excludeContributorIds)
    for (let i = 0; i < d.needed; i++) {
      const c = others.find(o => !excl.has(o) && !samples.some(x => x.contributorId === o)) ?? others[(round + i) % others.length]
      samples.push(s(mu2 + delta * sigma + sigma * gauss(), c))
    }
  }
  return 'undecided'
}
for (const carry of [false, true]) for (const delta of [0, 0.5, 1, 2]) {
  const n = 2000, out: Record<string, number> = {}
  for (let i = 0; i < n; i++) { const k = trial(-3, delta, carry); out[k] = (out[k] ?? 0) + 1 }
  console.log(`${policy} carried=${carry}, mallory's code truly +${delta}σ: merged ${(100 * (out.merge ?? 0) / n).toFixed(1)}%`, JSON.stringify(out))
}

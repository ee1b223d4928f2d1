import t from 'tap'
import { createRng } from '@autoresearch-grid/shared'
import { BIAS_MIN_COMMITS, biasedReporters, type UnselectedRun } from '../../src/ratchet/bias.ts'

// ratchet/bias.ts: a contributor whose baselines and verifications sit systematically apart from
// other contributors' runs of the same commits is a biased reporter; honest noise is not.

const SIGMA = 0.01

/** Runs of `commits` commits by each contributor, one run each, honest noise plus each one's offset (in σ). */
function campaign(offsets: Record<string, number>, commits: number, seed: number): UnselectedRun[] {
  const rng = createRng(seed).next
  const gaussian = () => Math.sqrt(-2 * Math.log(1 - rng())) * Math.cos(2 * Math.PI * rng())
  const runs: UnselectedRun[] = []
  for (let i = 0; i < commits; i++) {
    const truth = 1.5 + 0.01 * i
    for (const [contributorId, offset] of Object.entries(offsets))
      runs.push({ contributorId, hardwareClass: 'cpu', commit: `c${i}`, valBpb: truth + SIGMA * (offset + gaussian()) })
  }
  return runs
}

t.test('a reporter 3σ low is found within a few shared commits; its honest neighbours are not', async t => {
  const found = biasedReporters(campaign({ h1: 0, h2: 0, h3: 0, lowball: -3 }, 4, 1), () => SIGMA)
  t.same(found.map(b => b.contributorId), ['lowball'])
  t.ok(found[0].shiftSigma < -2 && found[0].z <= -4, `shift ${found[0].shiftSigma.toFixed(2)}σ, z ${found[0].z.toFixed(1)}`)
})

t.test('one reporting high (a saboteur verifier, a σ poisoner) is found the same way', async t => {
  t.same(biasedReporters(campaign({ h1: 0, h2: 0, saboteur: 5 }, 4, 2), () => SIGMA).map(b => b.contributorId), ['saboteur'])
  const poisoned = campaign({ h1: 0, h2: 0, h3: 0 }, 5, 3)
  for (let i = 0; i < 3; i++) poisoned.push({ contributorId: 'poisoner', hardwareClass: 'cpu', commit: `c${i}`, valBpb: 4.0 })
  t.same(biasedReporters(poisoned, () => SIGMA).map(b => b.contributorId), ['poisoner'])
})

t.test('honest contributors are not flagged, over many commits and many campaigns', async t => {
  let flagged = 0
  for (let seed = 1; seed <= 200; seed++) flagged += biasedReporters(campaign({ a: 0, b: 0, c: 0, d: 0 }, 30, seed), () => SIGMA).length
  t.equal(flagged, 0, 'none of 800 honest contributors in 200 campaigns of 30 commits')
})

t.test('too few shared commits, or a small offset, is not enough', async t => {
  t.same(biasedReporters(campaign({ h1: 0, h2: 0, h3: 0, lowball: -3 }, BIAS_MIN_COMMITS - 1, 4), () => SIGMA), [], 'fewer commits than BIAS_MIN_COMMITS')
  t.same(biasedReporters(campaign({ h1: 0, h2: 0, h3: 0, slight: -1 }, 60, 5), () => SIGMA), [], 'a 1σ offset, however sure, is below BIAS_SHIFT')
  t.same(biasedReporters(campaign({ alone: -3 }, 10, 6), () => SIGMA), [], 'nobody to compare with')
})

t.test('classes are compared apart: a class of its own is no bias', async t => {
  const runs = campaign({ h1: 0, h2: 0 }, 5, 7).concat(campaign({ other: 0 }, 5, 8).map(r => ({ ...r, hardwareClass: 'gpu', valBpb: r.valBpb - 0.5 })))
  t.same(biasedReporters(runs, () => SIGMA), [])
})

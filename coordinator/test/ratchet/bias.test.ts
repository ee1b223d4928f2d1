import t from 'tap'
import { createRng } from '@autoresearch-grid/shared'
import { BIAS_MIN_COMMITS, biasedReporters, CLAIM_GAP_MIN_CANDIDATES, type CommitRun, overclaimers, type UnselectedRun } from '../../src/ratchet/bias.ts'

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
  t.same(biasedReporters(campaign({ h1: 0, h2: 0, h3: 0, saboteur: 5 }, 4, 2), () => SIGMA).map(b => b.contributorId), ['saboteur'])
  const poisoned = campaign({ h1: 0, h2: 0, h3: 0 }, 5, 3)
  for (let i = 0; i < 3; i++) poisoned.push({ contributorId: 'poisoner', hardwareClass: 'cpu', commit: `c${i}`, valBpb: 4.0 })
  t.same(biasedReporters(poisoned, () => SIGMA).map(b => b.contributorId), ['poisoner'])
})

t.test('a wild value beside two honest runs does not frame them (one commit counts at most 5σ)', async t => {
  const runs = campaign({ h1: 0, h2: 0, h3: 0 }, 6, 11)
  runs.push({ contributorId: 'poisoner', hardwareClass: 'cpu', commit: 'c0', valBpb: 4.0 }, { contributorId: 'poisoner', hardwareClass: 'cpu', commit: 'c1', valBpb: 1.51 })
  t.same(biasedReporters(runs.filter(r => !(r.commit === 'c0' && r.contributorId === 'h3')), () => SIGMA), [], 'the poisoner shared two commits only; h1 and h2 stand')
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

/**
 * Candidates of one author, each verified by three other contributors: the author's claim is its
 * true score plus `claimOffset` σ plus noise, and (as the screen does) only claims that looked
 * better than the parent by σ·√(1 + 1/4) were verified; `null`: every idea does nothing.
 */
function verifiedCandidates(claimOffset: number, candidates: number, seed: number): CommitRun[] {
  const rng = createRng(seed).next
  const gaussian = () => Math.sqrt(-2 * Math.log(1 - rng())) * Math.cos(2 * Math.PI * rng())
  const runs: CommitRun[] = []
  for (let i = 0; runs.length < candidates * 4; i++) {
    const parentNoise = (gaussian() + gaussian() + gaussian() + gaussian()) / 4
    const claimNoise = claimOffset + gaussian()
    if (claimNoise - parentNoise > -Math.sqrt(1.25)) continue
    const at = (noise: number) => 1.5 + SIGMA * noise
    runs.push({ contributorId: 'author', hardwareClass: 'cpu', commit: `c${i}`, valBpb: at(claimNoise), claim: true })
    for (const v of ['v1', 'v2', 'v3']) runs.push({ contributorId: v, hardwareClass: 'cpu', commit: `c${i}`, valBpb: at(gaussian()), claim: false })
  }
  return runs
}

t.test('an author whose claims sit 4σ below what others measure is found by its third verified candidate', async t => {
  let found = 0
  for (let seed = 1; seed <= 100; seed++) found += overclaimers(verifiedCandidates(-4, CLAIM_GAP_MIN_CANDIDATES, seed), () => SIGMA).length
  t.ok(found >= 85, `${found} of 100 forgers below the cap`)
  t.same(overclaimers(verifiedCandidates(-4, CLAIM_GAP_MIN_CANDIDATES - 1, 1), () => SIGMA), [], 'not before')
})

t.test('an honest author is not, though its claims were verified because they looked good', async t => {
  let flagged = 0
  // The worst honest case: every idea null, so every verified claim was luck.
  for (let seed = 1; seed <= 300; seed++) flagged += overclaimers(verifiedCandidates(0, 6, seed), () => SIGMA).length
  t.ok(flagged <= 1, `${flagged} of 300 honest authors of null ideas, 6 verified candidates each`)
})

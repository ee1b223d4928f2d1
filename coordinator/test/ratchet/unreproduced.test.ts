import t from 'tap'
import { createRng } from '@autoresearch-grid/shared'
import { type DecidedClaim, HONEST_UNREPRODUCED_RATE, MIN_UNREPRODUCED, UNREPRODUCED_ALPHA, unreproducedClaimants } from '../../src/ratchet/unreproduced.ts'

// ratchet/unreproduced.ts: claims above the cap that others did not reproduce make a suspect when
// they come close together, as a forger's do; an honest contributor whose wild runs put two such
// claims far apart among hundreds (the grid's heavy tails, docs/RATCHET.md "Honest contributors
// flagged as suspects") is not one.

const claim = (contributorId: string, unreproduced = false): DecidedClaim => ({ contributorId, unreproduced })

/** `n` decided claims of honest contributors a, b, c in turn, none unreproduced. */
const honest = (n: number): DecidedClaim[] => Array.from({ length: n }, (_, i) => claim('abc'[i % 3]))

t.test('an honest contributor with two unreproduced claims far apart among many is not a suspect', async t => {
  // The grid's seed-1 campaign: the two wild claims of one contributor among hundreds of its others.
  const claims = [...honest(90), claim('a', true), ...honest(120), claim('a', true), ...honest(90)]
  t.equal(claims.filter(c => c.contributorId === 'a' && c.unreproduced).length, MIN_UNREPRODUCED, 'two unreproduced: the rule before flagged it')
  t.same(unreproducedClaimants(claims), [])
})

t.test('honest contributors whose claims are unreproduced at the honest rate at random are not flagged', async t => {
  const rng = createRng(7).next
  let flagged = 0
  for (let campaign = 0; campaign < 100; campaign++) {
    const claims = Array.from({ length: 1000 }, () => claim(`c${Math.floor(rng() * 8)}`, rng() < HONEST_UNREPRODUCED_RATE))
    if (unreproducedClaimants(claims).length) flagged++
  }
  t.ok(flagged <= 100 * UNREPRODUCED_ALPHA, `${flagged} of 100 campaigns of 1000 claims flagged someone`)
})

t.test('a forger whose claims are unreproduced one after another is flagged at its second', async t => {
  const claims = [...honest(60), claim('f', true), ...honest(2), claim('f', true)]
  t.same(unreproducedClaimants(claims), ['f'])
  t.same(unreproducedClaimants(claims.slice(0, -1)), [], 'not on one claim')
})

t.test('honest claims made before forging buy no licence: the forger is flagged as soon as it starts', async t => {
  const before = Array.from({ length: 200 }, () => claim('f'))
  const claims = [...before, ...honest(100), claim('f', true), claim('f', true), claim('f', true)]
  t.same(unreproducedClaimants(claims), ['f'])
})

t.test('a forger of one claim in four is flagged after a few forged claims', async t => {
  const claims: DecidedClaim[] = []
  let forged = 0
  for (let i = 0; i < 60 && !unreproducedClaimants(claims, 1000).length; i++) {
    claims.push(claim('f', i % 4 === 0), ...honest(3))
    if (i % 4 === 0) forged++
  }
  t.same(unreproducedClaimants(claims, 1000), ['f'])
  t.ok(forged <= 8, `flagged after ${forged} forged claims`)
})

t.test('once flagged, a forger stays a suspect whatever its later claims', async t => {
  const claims = [claim('f', true), claim('f', true), ...Array.from({ length: 50 }, () => claim('f'))]
  t.same(unreproducedClaimants(claims), ['f'])
})

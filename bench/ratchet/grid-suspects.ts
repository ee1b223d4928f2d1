/**
 * Why honest contributors of the grid (bench/ratchet/grid.ts: every contributor honest) are made
 * suspects (docs/RATCHET.md, "Fourth round, session 14"): per campaign, each contributor's claims
 * (explorations) and its claims above the cap that others did not reproduce, each with the claim in
 * σ of its class, whether the author's run was a wild one (4 × the noise), the change's true effect
 * in σ and whether it was carried; who the suspect rule flagged, and what production's bias rules
 * (ratchet/bias.ts) would say of the same runs.
 *   npx tsx bench/ratchet/grid-suspects.ts [policy] [seeds] [30% | 1%] [own-class | every-class | as-decided] [two]
 * (`two`: the suspect rule before session 14, two unreproduced claims whatever came between.)
 */
import type { RatchetPolicy } from '../../coordinator/src/ratchet/index.ts'
import { gridCampaign, ONE_PERCENT_REAL, simulateGrid, type GridConfig } from './grid.ts'

const [policy = 'parallel', seeds = '3', prior = '30%', carryArg, rule] = process.argv.slice(2)
const carry = carryArg === 'as-decided' ? undefined : carryArg
const effects = prior === '1%' ? ONE_PERCENT_REAL : undefined
let claims = 0
let unreproduced = 0
let wild = 0
let flagged = 0
let waiting = 0
const perContributor: number[] = []
for (let seed = 1; seed <= Number(seeds); seed++) {
  const r = simulateGrid(gridCampaign({
    seed, policy: policy as RatchetPolicy, effects, carryFromOrigin: carry as GridConfig['carryFromOrigin'], unreproducedRule: rule === 'two' ? 'two' : undefined,
  }))
  const n = Object.values(r.claimsBy).reduce((a, b) => a + b, 0)
  claims += n
  unreproduced += r.unreproducedClaims.length
  wild += r.unreproducedClaims.filter(u => u.wild).length
  flagged += r.suspects.length
  waiting += r.suspectsWaiting
  console.log(`seed ${seed}: ${r.runs} runs, ${r.merges.length} merges, ${n} claims; flagged ${JSON.stringify(r.suspects)} (${r.suspectsWaiting} waiting); bias.ts: biased ${JSON.stringify(r.biased)}, overclaiming ${JSON.stringify(r.overclaiming)}`)
  for (const [c, k] of Object.entries(r.claimsBy).sort()) {
    const mine = r.unreproducedClaims.filter(u => u.author === c)
    perContributor.push(mine.length)
    if (mine.length) console.log(`  ${c}: ${k} claims, ${mine.length} unreproduced above the cap: ` + mine.map(u => `claim ${u.claimSigma.toFixed(1)}σ${u.wild ? ' wild' : ''}${u.carried ? ' carried' : ''} (true ${u.trueSigma.toFixed(1)}σ)`).join('; '))
  }
}
const histogram: number[] = []
for (const k of perContributor) histogram[k] = (histogram[k] ?? 0) + 1
console.log(`${policy}, ${prior} real, carried ${carry ?? 'as decided'}, ${seeds} seeds: ${claims} claims, ${unreproduced} unreproduced above the cap (${(100 * unreproduced / claims).toFixed(2)} % of claims; ${wild} with a wild run), ` +
  `contributors per campaign with 0, 1, 2, … of them ${JSON.stringify(Array.from(histogram, x => x ?? 0))}; ${flagged} flagged (${waiting} waiting)`)

/**
 * Authors whose claims above the cap (`maxImprovement`) others keep failing to reproduce (issue 15:
 * the forger above the cap; docs/RATCHET.md, "Honest contributors flagged as suspects").
 *
 * Two such claims used to be enough, however many claims came between them. An honest run with
 * heavy tails gets there too: in the grid (bench/ratchet/grid-suspects.ts: σ 0.038, so the cap is
 * 6.6σ, 3 % of runs at 4 × the noise, a carried change keeping the largest claim of its chain)
 * 0.2 % of honest claims were rejected as unreproduced above the cap, and over a campaign 1–3
 * honest contributors in 3 had two; one of them had 786 claims by the end, and its 121 candidates
 * waited for a maintainer. A forger's claims are unreproduced one after another.
 *
 * So the test is a CUSUM over each contributor's decided claims in the order they were made: a
 * claim rejected as `unreproduced-improvement` adds log(FORGER_RATE / HONEST_RATE), any other
 * verdict adds log((1 − FORGER_RATE) / (1 − HONEST_RATE)) (about −0.69: one claim's credit), and
 * the sum never goes below 0, so a record of honest claims buys no licence to forge later. A
 * contributor is flagged once the sum reaches log(A), A = max(1, claims decided in the campaign)
 * / ALPHA, with at least MIN_UNREPRODUCED unreproduced claims in the stretch that got it there.
 * Why that A: the sum reaching log A means that the likelihood ratio from some earlier claim on
 * reached A, and from each start it does so with chance at most 1/A when the contributor's true
 * rate is HONEST_RATE or less (Ville's inequality); over every start of every contributor — every
 * contributor and every look — at most N/A = ALPHA (up to a log N factor, A growing with N).
 * A forger of every claim is flagged at its second unreproduced claim while the campaign has
 * fewer than 500 decided claims, at its third up to 50 000; one that forges one claim in four,
 * after ~4 forged; one that forges one in eight or fewer is not, and costs the honest as much as their own wild runs
 * do (each of its claims above the cap still needs others' runs to show it: it cannot merge).
 */

/** An honest contributor's claims rejected as unreproduced above the cap: at most this share (the grid: 0.2 %). */
export const HONEST_UNREPRODUCED_RATE = 0.005
/** The forger the test is tuned to: every second claim forged above the cap. */
export const FORGER_UNREPRODUCED_RATE = 0.5
/** The chance that any honest contributor of a campaign is ever flagged (at HONEST_UNREPRODUCED_RATE). */
export const UNREPRODUCED_ALPHA = 0.05
/** Never on one claim: one wild run is not a pattern. */
export const MIN_UNREPRODUCED = 2

export interface DecidedClaim {
  contributorId: string
  /** Rejected as `unreproduced-improvement`. */
  unreproduced: boolean
}

const UP = Math.log(FORGER_UNREPRODUCED_RATE / HONEST_UNREPRODUCED_RATE)
const DOWN = Math.log((1 - FORGER_UNREPRODUCED_RATE) / (1 - HONEST_UNREPRODUCED_RATE))

/**
 * Pure: the contributors (sorted) whose unreproduced claims above the cap come too close together
 * for honest luck (see the header). `claims`: every decided claim of the campaign, in the order
 * they were made; `campaignClaims` (default: their number) sets the bar.
 */
export function unreproducedClaimants(claims: readonly DecidedClaim[], campaignClaims = claims.length): string[] {
  const bar = Math.log(Math.max(1, campaignClaims) / UNREPRODUCED_ALPHA)
  const state = new Map<string, { sum: number; unreproduced: number }>()
  const flagged = new Set<string>()
  for (const c of claims) {
    if (flagged.has(c.contributorId)) continue
    const s = state.get(c.contributorId) ?? { sum: 0, unreproduced: 0 }
    const sum = s.sum + (c.unreproduced ? UP : DOWN)
    // Back at 0 the stretch starts afresh, and so does its count.
    const next = sum <= 0 ? { sum: 0, unreproduced: 0 } : { sum, unreproduced: s.unreproduced + (c.unreproduced ? 1 : 0) }
    state.set(c.contributorId, next)
    if (next.sum >= bar && next.unreproduced >= MIN_UNREPRODUCED) flagged.add(c.contributorId)
  }
  return [...flagged].sort()
}

import t from 'tap'
import { runScenario } from '../../../bench/adversaries/play.ts'
import { scenarios } from '../../../bench/adversaries/scenarios.ts'

// Issue 15, "Done when": no adversary of one or two contributors merges a non-improvement. Each
// scenario is the bench's (bench/adversaries/), smaller: a real coordinator (SQLite, git, fastify on
// loopback), the default noise policy, and real WebSocket clients — 4 honest researchers and the
// adversary — reporting what a research model says their code really scores (σ = 0.01). Every
// merge is judged against that truth.
//
// A merge is a statistical verdict: honest noise alone passes a null change now and then (the
// bench's 20-campaign rates are in docs/RATCHET.md, a few in a hundred campaigns at most), and the
// order the clients are served in varies from run to run. So a campaign with a false merge is
// followed by a second, differently seeded one: an adversary that gets a false merge in both fails.

const UNITS = 120

for (const [i, s] of scenarios(UNITS, 7).entries()) {
  if (i === 0) continue
  t.test(`${s.name}: merges no non-improvement`, async t => {
    let r = await runScenario(s)
    t.comment(`RESULT ${JSON.stringify(r)}`)
    if (r.falseMergesWithAdversary > 0) {
      r = await runScenario(scenarios(UNITS, 1007)[i])
      t.comment(`a false merge in the first campaign; the second: RESULT ${JSON.stringify(r)}`)
    }
    t.equal(r.falseMergesWithAdversary, 0, 'no false merge with the adversary involved (its candidate, its verification, its baselines)')
    t.ok(r.honestUnits > 0 && r.hostileUnits > 0, 'both sides worked')
  })
}

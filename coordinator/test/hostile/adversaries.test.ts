import t from 'tap'
import { runScenario } from '../../../bench/adversaries/play.ts'
import { scenarios } from '../../../bench/adversaries/scenarios.ts'

// Issue 15, "Done when": no adversary of one or two contributors merges a non-improvement. Each
// scenario is the bench's (bench/adversaries/), smaller: a real coordinator (SQLite, git, fastify on
// loopback), the default noise policy, and real WebSocket clients — 4 honest researchers and the
// adversary — reporting what a research model says their code really scores (σ = 0.01). Every
// merge is judged against that truth.

const UNITS = 120

for (const s of scenarios(UNITS, 7).slice(1)) {
  t.test(`${s.name}: merges no non-improvement`, async t => {
    const r = await runScenario(s)
    t.comment(`RESULT ${JSON.stringify(r)}`)
    t.equal(r.falseMergesWithAdversary, 0, 'no false merge with the adversary involved (its candidate, its verification, its baselines)')
    t.ok(r.honestUnits > 0 && r.hostileUnits > 0, 'both sides worked')
  })
}

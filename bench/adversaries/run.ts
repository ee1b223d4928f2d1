/**
 * The adversary table of docs/RATCHET.md (issue 15), on the production code path: for each
 * adversary, several seeded campaigns of a real coordinator with 4 honest researchers, and what
 * the ratchet merged. Rewrites the table between the markers in docs/RATCHET.md.
 *
 *   npx tsx bench/adversaries/run.ts [units per campaign = 240] [campaigns per row = 3] [noise policy]
 * With a policy (`pooled`, `parallel`, …) the campaigns use it and the table is printed, not written.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { runScenario, type ScenarioResult } from './play.ts'
import { scenarios } from './scenarios.ts'
import type { RatchetPolicy } from '../../coordinator/src/ratchet/index.ts'

const UNITS = Number(process.argv[2] ?? 240)
const SEEDS = Number(process.argv[3] ?? 3)
const POLICY = process.argv[4] as RatchetPolicy | undefined
const DOC = new URL('../../docs/RATCHET.md', import.meta.url)
const BEGIN = '<!-- bench/adversaries: begin -->'
const END = '<!-- bench/adversaries: end -->'

async function main() {
  const started = Date.now()
  const rows: ScenarioResult[][] = []
  for (let i = 0; i < scenarios(UNITS, 0).length; i++) {
    const runs: ScenarioResult[] = []
    for (let seed = 1; seed <= SEEDS; seed++) {
      const r = await runScenario({ ...scenarios(UNITS, seed)[i], ...(POLICY ? { policy: POLICY } : {}) })
      console.error(JSON.stringify(r))
      runs.push(r)
    }
    rows.push(runs)
  }
  const control = rows[0]
  const avg = (rs: ScenarioResult[], f: (r: ScenarioResult) => number) => rs.reduce((a, r) => a + f(r), 0) / rs.length
  const fmt = (x: number, d = 2) => x.toFixed(d)
  const honestMerges = avg(control, r => r.honestRealMerges)
  const lines = [
    `| adversary | false merges / campaign (adversary involved) | false merges / campaign (all) | adversary's merges / campaign | honest real merges / campaign (control ${fmt(honestMerges)}) | honest runs spent verifying the adversary | best's true drift (σ) | suspects flagged | candidates held (class not approved) |`,
    '|---|---|---|---|---|---|---|---|---|',
    ...rows.map(rs => `| ${rs[0].name} | ${fmt(avg(rs, r => r.falseMergesWithAdversary))} | ${fmt(avg(rs, r => r.falseMerges))} | ${fmt(avg(rs, r => r.hostileMerges))} | ${fmt(avg(rs, r => r.honestRealMerges))} | ${fmt(100 * avg(rs, r => r.honestVerifyingHostile / Math.max(1, r.honestUnits)), 1)} % | ${fmt(avg(rs, r => r.trueDrift / 0.01), 1)} | ${rs.filter(r => r.suspects.length).length} of ${rs.length} campaigns | ${fmt(avg(rs, r => r.heldCandidates), 1)} |`),
  ]
  const seconds = ((Date.now() - started) / 1000).toFixed(0)
  const table = `\n\`npx tsx bench/adversaries/run.ts ${UNITS} ${SEEDS}${POLICY ? ` ${POLICY}` : ''}\` (${SEEDS} seeded campaigns per row of ${UNITS} reports each, 4 honest researchers plus the adversary; ${seconds} s here; scheduling order varies between runs, so the numbers do a little too).\n\n${lines.join('\n')}\n`
  if (POLICY) {
    console.log(table)
    process.exit(0)
  }
  const doc = readFileSync(DOC, 'utf8')
  const a = doc.indexOf(BEGIN)
  const b = doc.indexOf(END)
  if (a < 0 || b < a) throw new Error(`docs/RATCHET.md has no "${BEGIN}" … "${END}" markers`)
  writeFileSync(DOC, doc.slice(0, a + BEGIN.length) + table + doc.slice(b))
  console.log(table)
  process.exit(0)
}

main()

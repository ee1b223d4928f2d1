/**
 * Whether a pair of colluding tokens can make an honest contributor a suspect (docs/SECURITY.md,
 * "A pair frames an honest contributor"; docs/RATCHET.md, "Witnesses"). Mallory and a friend
 * report every baseline and verification 3σ high; an honest contributor H runs the same commits.
 * When the pair are H's only company on those commits, the median of the contributors' means is
 * theirs, and H is the one who looks off. For each case, the share of trials in which the named
 * contributor is flagged by `biasedReporters` (runs nobody chose, one run each per commit) or
 * `overclaimers` (an author's claims against others' verifications), before and after the
 * witnesses rule; the true adversaries (a lowballer 3σ low, a forger 4σ below the cap) are there
 * to show what the rule costs in detection. Pure layer, the production ratchet/bias.ts; "before"
 * is the file at BEFORE (a git revision, default the commit before the rule), copied to a
 * temporary folder.
 *
 *   nice -n 19 npx tsx bench/adversaries/pair-framing.ts [trials = 1000]   # BEFORE=<rev>: another "before"
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import * as after from '../../coordinator/src/ratchet/bias.ts'
import type { CommitRun, UnselectedRun } from '../../coordinator/src/ratchet/bias.ts'

type Bias = Pick<typeof after, 'biasedReporters' | 'overclaimers'>
const SIGMA = 0.01
const gauss = () => { let u = 0; while (!u) u = Math.random(); return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * Math.random()) }
/** k of xs drawn at random (Fisher–Yates: sorting by a random comparison favours some orders). */
function pick(xs: readonly string[], k: number): string[] {
  const a = [...xs]
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1))
    ;[a[i], a[j]] = [a[j], a[i]]
  }
  return a.slice(0, k)
}
const HONEST = ['h1', 'h2', 'h3', 'h4']

/** ratchet/bias.ts as it was at `rev`, its one import pointed at today's stats.ts. */
async function loadBefore(rev: string): Promise<Bias> {
  const root = fileURLToPath(new URL('../../', import.meta.url))
  const source = execFileSync('git', ['show', `${rev}:coordinator/src/ratchet/bias.ts`], { cwd: root, encoding: 'utf8' })
  const stats = pathToFileURL(join(root, 'coordinator/src/ratchet/stats.ts')).href
  const file = join(mkdtempSync(join(tmpdir(), 'pair-framing-')), 'bias.mts')
  writeFileSync(file, source.replace(`from './stats.ts'`, `from '${stats}'`))
  return (await import(pathToFileURL(file).href)) as Bias
}

/**
 * `commits` commits; on each, `who()` names the contributors that run it once, each at the truth
 * plus its offset (σ) plus noise; 'poison': the σ poisoner of bench/adversaries/roles.ts, half its
 * runs 4.0 and the rest honest.
 */
function unselected(offsets: Record<string, number | 'poison'>, commits: number, who: () => string[] = () => Object.keys(offsets)): UnselectedRun[] {
  const runs: UnselectedRun[] = []
  for (let i = 0; i < commits; i++) {
    for (const c of who()) {
      const offset = offsets[c]
      const valBpb = offset === 'poison' && Math.random() < 0.5 ? 4.0 : 1.5 + 0.01 * i + SIGMA * ((offset === 'poison' ? 0 : offset) + gauss())
      runs.push({ contributorId: c, hardwareClass: 'cpu', commit: `c${i}`, valBpb })
    }
  }
  return runs
}

/**
 * `candidates` verified candidates of one author, as bench/ratchet and the unit tests make them:
 * the claim is the truth plus `claimOffset` σ plus noise, verified only when it looked better than
 * the parent (4 runs) by σ·√(1 + 1/4); every idea null (the honest author's worst case). Each
 * verifier runs it once, at the truth plus its offset plus noise.
 */
function verified(claimOffset: number, candidates: number, verifiers: () => [string, number][]): CommitRun[] {
  const runs: CommitRun[] = []
  for (let i = 0, made = 0; made < candidates; i++) {
    const parentNoise = (gauss() + gauss() + gauss() + gauss()) / 4
    const claimNoise = claimOffset + gauss()
    if (claimNoise - parentNoise > -Math.sqrt(1.25)) continue
    made++
    runs.push({ contributorId: 'author', hardwareClass: 'cpu', commit: `c${i}`, valBpb: 1.5 + SIGMA * claimNoise, claim: true })
    for (const [v, offset] of verifiers()) runs.push({ contributorId: v, hardwareClass: 'cpu', commit: `c${i}`, valBpb: 1.5 + SIGMA * (offset + gauss()), claim: false })
  }
  return runs
}

const pair: [string, number][] = [['mallory', 3], ['friend', 3]]
const reporters: [string, string, (commits: number) => UnselectedRun[]][] = [
  ['honest H, the pair the only others', 'H', m => unselected({ H: 0, mallory: 3, friend: 3 }, m)],
  ['the pair, beside H alone', 'mallory', m => unselected({ H: 0, mallory: 3, friend: 3 }, m)],
  ['honest H, the pair and one more honest contributor', 'H', m => unselected({ H: 0, T: 0, mallory: 3, friend: 3 }, m)],
  ['honest H, the pair, one more honest on one of the commits', 'H',
    m => unselected({ H: 0, T: 0, mallory: 3, friend: 3 }, m).filter(r => r.contributorId !== 'T' || r.commit === 'c0')],
  ['the pair, beside three honest contributors', 'mallory', m => unselected({ H: 0, T: 0, U: 0, mallory: 3, friend: 3 }, m)],
  ['lowballer (3σ low) among 3 honest, all on every commit', 'L', m => unselected({ h1: 0, h2: 0, h3: 0, L: -3 }, m)],
  ['lowballer among 4 honest, 4 of the 5 on each commit', 'L', m => unselected({ h1: 0, h2: 0, h3: 0, h4: 0, L: -3 }, m, () => pick(['L', ...HONEST], 4))],
  ['lowballer among 4 honest, 3 of the 5 on each commit', 'L', m => unselected({ h1: 0, h2: 0, h3: 0, h4: 0, L: -3 }, m, () => pick(['L', ...HONEST], 3))],
  ['σ poisoner (half its runs 4.0) among 4 honest, 3 of the 5 on each commit', 'P', m => unselected({ h1: 0, h2: 0, h3: 0, h4: 0, P: 'poison' }, m, () => pick(['P', ...HONEST], 3))],
  ['an honest one of the 4 beside the lowballer (h1)', 'h1', m => unselected({ h1: 0, h2: 0, h3: 0, h4: 0, L: -3 }, m, () => pick(['L', ...HONEST], 3))],
]
const claimants: [string, (candidates: number) => CommitRun[]][] = [
  ['honest author (null ideas), verified by the pair only', c => verified(0, c, () => pair)],
  ['honest author (null ideas), the pair and 1 of 4 honest verify each', c => verified(0, c, () => [...pair, [pick(HONEST, 1)[0], 0]])],
  ['honest author (null ideas), the pair and 2 of 4 honest verify each', c => verified(0, c, () => [...pair, ...pick(HONEST, 2).map(h => [h, 0] as [string, number])])],
  ['forger 4σ below the cap, 2 of 4 honest verify each', c => verified(-4, c, () => pick(HONEST, 2).map(h => [h, 0] as [string, number]))],
  ['forger 4σ below the cap, 3 of 4 honest verify each', c => verified(-4, c, () => pick(HONEST, 3).map(h => [h, 0] as [string, number]))],
]

async function main() {
  const n = Number(process.argv[2] ?? 1000)
  const rev = process.env.BEFORE ?? 'c277024d9a8e79d683d965612c525bdffd99bf49'
  const before = await loadBefore(rev)
  const versions: Bias[] = [before, after]
  const pct = (k: number) => `${(100 * k / n).toFixed(1)} %`
  const cell = (hits: number[]) => `${pct(hits[0])} → ${pct(hits[1])}`
  console.log(`${n} trials per cell, σ ${SIGMA}; the share of trials in which the named contributor is flagged, before (ratchet/bias.ts at ${rev.slice(0, 7)}) → after (now: MIN_WITNESSES ${after.MIN_WITNESSES}, WITNESS_Z ${after.WITNESS_Z}, WITNESS_SHIFT ${after.WITNESS_SHIFT})\n`)
  const commits = [3, 6, 12, 24]
  console.log(`| biasedReporters: flagged | ${commits.map(m => `${m} shared commits`).join(' | ')} |`)
  console.log(`|---|${commits.map(() => '---:').join('|')}|`)
  for (const [name, target, make] of reporters) {
    const cells = commits.map(m => {
      const hits = [0, 0]
      for (let t = 0; t < n; t++) {
        const runs = make(m)
        versions.forEach((v, i) => { if (v.biasedReporters(runs, () => SIGMA).some(b => b.contributorId === target)) hits[i]++ })
      }
      return cell(hits)
    })
    console.log(`| ${name}: ${target} | ${cells.join(' | ')} |`)
  }
  const candidates = [3, 4, 6, 9]
  console.log(`\n| overclaimers: the author flagged | ${candidates.map(c => `${c} verified candidates`).join(' | ')} |`)
  console.log(`|---|${candidates.map(() => '---:').join('|')}|`)
  for (const [name, make] of claimants) {
    const cells = candidates.map(c => {
      const hits = [0, 0]
      for (let t = 0; t < n; t++) {
        const runs = make(c)
        versions.forEach((v, i) => { if (v.overclaimers(runs, () => SIGMA).some(g => g.contributorId === 'author')) hits[i]++ })
      }
      return cell(hits)
    })
    console.log(`| ${name} | ${cells.join(' | ')} |`)
  }
}

void main()

/**
 * Who the bench's contributors are: honest researchers, and the adversaries of issue 15's table.
 * A role says what an exploration's edit really does and what a worker reports for a run whose
 * true val_bpb is `v`; everything else (the protocol, the coordinator, the ratchet) is real.
 * Numbers: σ = 0.01, the campaign's cap on a claimed improvement 0.25.
 */
import { isCandidate, type Hardware, type UnitKind } from '../../shared/src/index.ts'
import { CPU, INVENTED, SIGMA } from './model.ts'

export interface Run {
  kind: UnitKind
  /** The true val_bpb of the code run. */
  truth: number
  /** For a verification: the candidate is a teammate's (colluders recognise each other's edits). */
  teammates: boolean
  /** One draw of N(0, σ²): the noise an honest run of this code has. */
  noise: number
  rng: () => number
}

export interface Role {
  name: string
  hostile: boolean
  hardware: Hardware
  /** The true effect of this contributor's next exploration. */
  editEffect(rng: () => number): number
  /** What it reports for a run; null: a crash. */
  reports(run: Run): number | null
}

const honestRun = (r: Run) => r.truth + r.noise
const uniform = (rng: () => number, a: number, b: number) => a + (b - a) * rng()

/** 40 % of ideas do nothing, 30 % harm by 0.5–3σ, 30 % help by 0.5–4σ (docs/RATCHET.md's mix). */
export function honestEffect(rng: () => number): number {
  const u = rng()
  if (u < 0.4) return 0
  if (u < 0.7) return uniform(rng, 0.5, 3) * SIGMA
  return -uniform(rng, 0.5, 4) * SIGMA
}

export const HONEST: Role = { name: 'honest', hostile: false, hardware: CPU, editEffect: honestEffect, reports: honestRun }

const claims = (by: number) => (r: Run) => (isCandidate(r.kind) ? r.truth - by + r.noise : honestRun(r))

export const ROLES = {
  /** Claims 0.5 better than it ran (twice the cap) for edits that do nothing; honest otherwise. */
  forgerAboveCap: { name: 'forger above the cap', hostile: true, hardware: CPU, editEffect: () => 0, reports: claims(0.5) },
  /** Claims 4σ better than it ran: under the cap, so the cap never trips. */
  forgerBelowCap: { name: 'forger below the cap', hostile: true, hardware: CPU, editEffect: () => 0, reports: claims(4 * SIGMA) },
  /**
   * One person, two tokens (two contributors to the coordinator): null edits claimed 4σ better,
   * each token "verifies" the other's candidates 4σ better and reports baselines of the best 4σ
   * worse, so the other's candidates look better still.
   */
  sybil: { name: 'sybil (one person, two tokens)', hostile: true, hardware: CPU, editEffect: () => 0, reports: colluding },
  /** Two contributors on a class nobody else has, playing the sybil's game there. */
  pairInventedClass: { name: 'colluding pair, invented class', hostile: true, hardware: INVENTED, editEffect: () => 0, reports: colluding },
  /** Explores honestly; verifies other people's candidates 5σ worse, or reports a crash. */
  saboteurVerifier: {
    name: 'saboteur verifier', hostile: true, hardware: CPU, editEffect: honestEffect,
    reports: (r: Run) => (r.kind === 'verify' ? (r.rng() < 0.5 ? null : r.truth + 5 * SIGMA + r.noise) : honestRun(r)),
  },
  /** Every number 3σ low: its claims, its baselines, its verifications of everyone. */
  lowballReporter: { name: 'lowball reporter', hostile: true, hardware: CPU, editEffect: () => 0, reports: (r: Run) => r.truth - 3 * SIGMA + r.noise },
  /** Explores honestly; half its baselines and verifications report 4.0 (the σ-poisoning run of the issue). */
  sigmaPoisoner: {
    name: 'σ poisoner', hostile: true, hardware: CPU, editEffect: honestEffect,
    reports: (r: Run) => (!isCandidate(r.kind) && r.rng() < 0.5 ? 4.0 : honestRun(r)),
  },
} satisfies Record<string, Role>

function colluding(r: Run): number {
  if (isCandidate(r.kind)) return r.truth - 4 * SIGMA + r.noise
  if (r.kind === 'baseline') return r.truth + 4 * SIGMA + r.noise
  return r.teammates ? r.truth - 4 * SIGMA + r.noise : honestRun(r)
}

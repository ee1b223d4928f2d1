import { z } from 'zod'

/**
 * The swarm's memory, as one agent sees it (DESIGN §9): what the campaign's other agents tried
 * near this unit's parent, what they measured and what they thought of it. The coordinator builds
 * it for every unit (coordinator/src/swarm/), bounded in entries and characters, so it costs a
 * known number of tokens; the Claude agent reads it in its first message and the heuristic
 * researcher uses it to avoid repeats.
 */

/** One experiment of the campaign, compact. */
export const SwarmExperiment = z.object({
  id: z.string().max(64),
  /** The parent it was tried on (first 10 hex digits). */
  parent: z.string().max(64),
  /** Tried on this unit's parent: the same edit again would measure the same thing. */
  onParent: z.boolean(),
  description: z.string().max(300),
  /** `pending`, `kept`, `discarded`, `crash`, …; `in-flight` while its worker still trains it. */
  status: z.string().max(40),
  /** The coordinator's decision in words. */
  verdict: z.string().max(240),
  valBpb: z.number().nullable(),
  /** val_bpb − the parent's mean on the same hardware class (negative is better); null if unknown. */
  delta: z.number().nullable(),
  /** The author agent's rationale and notes, shortened. */
  notes: z.string().max(400),
  /** Who edited: `heuristic`, `claude:<model>`, …, when known. */
  agent: z.string().max(80).nullable(),
  /** The constants the edit changed, e.g. `MATRIX_LR 0.04 -> 0.06` (from its diff). */
  changes: z.array(z.string().max(120)).max(8),
  /** sha256 of the trained editable files (shared/src/source-hash.ts). */
  sourceHash: z.string().max(64),
})
export type SwarmExperiment = z.infer<typeof SwarmExperiment>

export const SwarmView = z.object({
  /** The current best and its val_bpb (mean of its baselines on the best-measured class). */
  best: z.object({ commit: z.string().max(64), valBpb: z.number().nullable() }),
  /** The best's lineage, newest first: the merges that made it. */
  lineage: z.array(z.object({ commit: z.string().max(64), description: z.string().max(300), valBpb: z.number(), delta: z.number() })).max(10),
  /** Experiments on this parent first, then the newest elsewhere in the campaign; in-flight ones included. */
  nearby: z.array(SwarmExperiment).max(40),
  /** Hypotheses still open (highest priority first) and those already tested, merged or rejected. */
  open: z.array(z.object({ title: z.string().max(200), priority: z.number() })).max(12),
  exhausted: z.array(z.object({ title: z.string().max(200), status: z.string().max(20) })).max(20),
  /** Entries left out to stay within the size bound. */
  omitted: z.number().int().nonnegative(),
})
export type SwarmView = z.infer<typeof SwarmView>

/** What an agent may ask of the campaign's experiments (the Claude agent's search tool). */
export const SwarmQuery = z.object({
  /** Words that must all appear in the description, notes or changes (case-insensitive). */
  text: z.string().max(200).optional(),
  /** A constant the edit changed, e.g. `MATRIX_LR`. */
  constant: z.string().regex(/^[A-Z][A-Z0-9_]{0,63}$/).optional(),
  status: z.string().max(40).optional(),
  /** Only experiments on this parent commit. */
  parent: z.string().regex(/^[0-9a-f]{4,64}$/).optional(),
  limit: z.number().int().min(1).max(20).default(10),
})
export type SwarmQuery = z.infer<typeof SwarmQuery>

/**
 * The top-level constants a diff changes, as `NAME old -> new` (a `-NAME = …` line paired with a
 * `+NAME = …` line). Pure; both sides compute it the same way, so an edit is recognised whoever
 * described it and however.
 */
export function constantChanges(diff: string): string[] {
  const removed = new Map<string, string>()
  const added = new Map<string, string>()
  for (const m of diff.matchAll(/^([-+])([A-Z][A-Z0-9_]*)\s*(?::[^=\n]*)?=\s*([^#\n]*?)\s*(?:#.*)?$/gm)) {
    if (m[0].startsWith('---') || m[0].startsWith('+++')) continue
    ;(m[1] === '-' ? removed : added).set(m[2], m[3])
  }
  const out: string[] = []
  for (const [name, to] of added) {
    const from = removed.get(name)
    if (from === undefined) out.push(`${name} = ${to} (new)`)
    else if (from !== to) out.push(`${name} ${from} -> ${to}`)
  }
  return out.slice(0, 8)
}

/** The constant a change names (`MATRIX_LR 0.04 -> 0.06` → `MATRIX_LR`). */
export function changedConstant(change: string): string {
  return /^[A-Z][A-Z0-9_]*/.exec(change)?.[0] ?? ''
}

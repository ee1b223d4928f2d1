import { LIMITS, type SwarmExperiment, type SwarmView } from '@autoresearch-grid/shared'

/**
 * The swarm view of one unit (shared/src/swarm.ts), built from rows the caller read: pure, so what
 * an agent is shown, in what order and how it is cut to size is tested without a database.
 *
 * Order: candidates other workers are training on this parent right now (an agent must not pick
 * the same), then what was measured on this parent, newest first, then the newest experiments
 * elsewhere in the campaign. Cut to `maxChars` of JSON from the end (elsewhere first, then the
 * oldest on this parent), so the bound holds in characters and hence roughly in tokens (~4 a token).
 */

export interface ExperimentRow {
  id: string
  unitId: string
  parentCommit: string
  description: string
  status: string
  decision: string
  valBpb: number | null
  agentNotes: string
  /** Constants its diff changes (shared constantChanges). */
  changes: string[]
  sourceHash: string
  hardwareClass: string
}

export interface ClaimRow {
  unitId: string
  parentCommit: string
  description: string
  changes: string[]
  sourceHash: string
  agent: string | null
}

export interface ViewInput {
  parent: string
  best: { commit: string; valBpb: number | null }
  lineage: SwarmView['lineage']
  /** Explorations and rebases on `parent`, newest first. */
  onParent: ExperimentRow[]
  /** The campaign's newest explorations and rebases, newest first (may repeat onParent's). */
  recent: ExperimentRow[]
  /** Candidates claimed and still being trained (no experiment yet). */
  inFlight: ClaimRow[]
  /** Mean val_bpb of a commit on a hardware class, from baselines and verifications. */
  parentMean: (commit: string, hardwareClass: string) => number | null
  /** The agent that made a unit's candidate, when its worker said. */
  agentOf: (unitId: string) => string | null
  open: SwarmView['open']
  exhausted: SwarmView['exhausted']
  maxChars?: number
}

const cut = (s: string, n: number) => (s.length <= n ? s : `${s.slice(0, n - 1)}…`)
const short = (commit: string) => commit.slice(0, 10)
function lastIndex<T>(xs: readonly T[], f: (x: T) => boolean): number {
  for (let i = xs.length - 1; i >= 0; i--) if (f(xs[i])) return i
  return -1
}
const round = (x: number | null) => (x === null ? null : Math.round(x * 1e6) / 1e6)

/** One experiment as the view and the search show it. */
export function experimentEntry(e: ExperimentRow, parent: string, parentMean: ViewInput['parentMean'], agentOf: ViewInput['agentOf']): SwarmExperiment {
  const mean = parentMean(e.parentCommit, e.hardwareClass)
  return {
    id: e.id, parent: short(e.parentCommit), onParent: e.parentCommit === parent,
    description: cut(e.description, 300), status: e.status, verdict: cut(e.decision, 240),
    valBpb: round(e.valBpb), delta: e.valBpb !== null && mean !== null ? round(e.valBpb - mean) : null,
    notes: cut(e.agentNotes.replace(/\s+/g, ' ').trim(), 400), agent: agentOf(e.unitId),
    changes: e.changes.slice(0, 8).map(c => cut(c, 120)), sourceHash: e.sourceHash,
  }
}

function fromClaim(c: ClaimRow, parent: string): SwarmExperiment {
  return {
    id: c.unitId, parent: short(c.parentCommit), onParent: c.parentCommit === parent, description: cut(c.description, 300),
    status: 'in-flight', verdict: 'being trained now', valBpb: null, delta: null, notes: '', agent: c.agent,
    changes: c.changes.slice(0, 8).map(x => cut(x, 120)), sourceHash: c.sourceHash,
  }
}

export function buildSwarmView(input: ViewInput): SwarmView {
  const maxChars = input.maxChars ?? LIMITS.swarmViewChars
  const seen = new Set<string>()
  const nearby: SwarmExperiment[] = []
  const add = (e: SwarmExperiment, key: string) => {
    if (seen.has(key)) return
    seen.add(key)
    nearby.push(e)
  }
  for (const c of input.inFlight.filter(c => c.parentCommit === input.parent)) add(fromClaim(c, input.parent), c.unitId)
  for (const e of input.onParent) add(experimentEntry(e, input.parent, input.parentMean, input.agentOf), e.unitId)
  for (const e of input.recent) add(experimentEntry(e, input.parent, input.parentMean, input.agentOf), e.unitId)
  const omitted = Math.max(0, nearby.length - 40)
  const view: SwarmView = {
    best: { commit: short(input.best.commit), valBpb: round(input.best.valBpb) },
    lineage: input.lineage.slice(0, 10).map(l => ({ ...l, commit: short(l.commit), description: cut(l.description, 300) })),
    nearby: nearby.slice(0, 40),
    open: input.open.slice(0, 12).map(h => ({ ...h, title: cut(h.title, 200) })),
    exhausted: input.exhausted.slice(0, 20).map(h => ({ ...h, title: cut(h.title, 200) })),
    omitted: 0,
  }
  return cutToSize(view, maxChars, omitted)
}

/**
 * Cuts the view's lists until its JSON fits in `maxChars`, counting each entry cut in `omitted`.
 * Longest lists give way first: what is elsewhere, then old hypotheses, then the lineage's tail.
 * `size` is the view's JSON length as the lists shrink (a test passes the plain
 * `JSON.stringify(view).length`).
 */
export function cutToSize(view: SwarmView, maxChars: number, omitted: number, size: () => number = jsonLength(view)): SwarmView {
  while (size() > maxChars) {
    const elsewhere = lastIndex(view.nearby, e => !e.onParent)
    if (elsewhere >= 0) view.nearby.splice(elsewhere, 1)
    else if (view.exhausted.length > 5) view.exhausted.pop()
    else if (view.nearby.length > 10) view.nearby.pop()
    else if (view.lineage.length > 3) view.lineage.pop()
    else if (view.open.length > 3) view.open.pop()
    else if (view.nearby.length) view.nearby.pop()
    else break
    omitted++
  }
  view.omitted = omitted
  return view
}

/**
 * `() => JSON.stringify(view).length` for the view as the cutting loop changes its lists, without
 * writing the whole view out again after each cut (that was a fifth of building a view): an array's
 * JSON is its elements' JSON, comma-separated, in brackets, so each element is written once and
 * the rest is arithmetic. Exact for lists of plain objects, which is all a view holds.
 */
function jsonLength(view: SwarmView): () => number {
  const lists = ['lineage', 'nearby', 'open', 'exhausted'] as const
  // The view with its lists empty (the same keys in the same order), less their brackets.
  const rest = JSON.stringify({ ...view, lineage: [], nearby: [], open: [], exhausted: [] }).length - 2 * lists.length
  const lengths = new WeakMap<object, number>()
  const lengthOf = (x: object) => {
    let n = lengths.get(x)
    if (n === undefined) lengths.set(x, (n = JSON.stringify(x).length))
    return n
  }
  return () => {
    let n = rest
    for (const name of lists) {
      const list: readonly object[] = view[name]
      n += 2 + Math.max(0, list.length - 1)
      for (const x of list) n += lengthOf(x)
    }
    return n
  }
}

import { LIMITS, sourceHash, type WorkUnit } from '@autoresearch-grid/shared'

/**
 * The sources one assignment feed's worker holds, by hash (shared/src/protocol.ts, `HeldSources`):
 * those it named when it subscribed and those sent on the feed since, the latest LIMITS.heldSources
 * of them (a worker keeps at least as many). Null for a worker that named none: an older worker,
 * which always gets the whole source.
 */
export class KnownSources {
  private readonly held: Set<string>

  constructor(hashes: string[]) {
    this.held = new Set(hashes.slice(-LIMITS.heldSources))
  }

  /** The unit as the worker should get it: without the source if it holds it, always with its hash. */
  strip(unit: WorkUnit): WorkUnit {
    const hash = hashOf(unit.source)
    if (this.held.has(hash)) return { ...unit, source: {}, sourceHash: hash }
    this.held.add(hash)
    // A Set iterates in insertion order: the first is the oldest.
    if (this.held.size > LIMITS.heldSources) this.held.delete(this.held.values().next().value!)
    return { ...unit, sourceHash: hash }
  }
}

/** A unit for a worker that named no sources: the whole source, and its hash. */
export function withSourceHash(unit: WorkUnit): WorkUnit {
  return { ...unit, sourceHash: hashOf(unit.source) }
}

/**
 * Hashes by source object: the coordinator's source cache (sourceOf) hands out the same object
 * for a commit every time, so each source is hashed once, not once per unit.
 */
const hashes = new WeakMap<object, string>()

function hashOf(source: Record<string, string>): string {
  let h = hashes.get(source)
  if (!h) hashes.set(source, (h = sourceHash(source)))
  return h
}

import { LIMITS, sourceHash, type SourceFiles, type WorkUnit } from '@autoresearch-grid/shared'

/**
 * The unit sources this worker received, by hash, so the coordinator need not send them again
 * (shared/src/protocol.ts, `HeldSources`): the worker names the latest ones when it subscribes,
 * and a unit whose source it holds comes with `source` empty and `sourceHash` set. Kept for the
 * latest 2 × LIMITS.heldSources sources used: the coordinator assumes the worker holds the latest
 * LIMITS.heldSources it named or was sent, and twice as many here covers them all. A source
 * missing anyway (a restart) is asked for with `worker.unitSource`.
 */
export class SourceCache {
  private readonly byHash = new Map<string, SourceFiles>()

  constructor(private readonly size = 2 * LIMITS.heldSources) {}

  /** The hashes to name when subscribing: the latest used, at most LIMITS.heldSources. */
  held(): string[] {
    return [...this.byHash.keys()].slice(-LIMITS.heldSources)
  }

  /**
   * The unit with its source: as it came (remembered for next time), or filled in from what this
   * worker holds, or fetched (`fetch`: `worker.unitSource`). A coordinator that sends no hash
   * (older ones) always sends the source.
   */
  async complete(unit: WorkUnit, fetch: (unit: WorkUnit) => Promise<SourceFiles>): Promise<WorkUnit> {
    if (!unit.sourceHash) return unit
    if (unit.editableFiles.every(f => f in unit.source)) {
      this.remember(sourceHash(unit.source), unit.source)
      return unit
    }
    let source = this.byHash.get(unit.sourceHash)
    if (!source) {
      source = await fetch(unit)
      // What came back must be what the unit names: a source is only ever trusted by its hash.
      if (sourceHash(source) !== unit.sourceHash) throw new Error(`the coordinator sent a source for unit ${unit.id} that does not match its hash`)
    }
    this.remember(unit.sourceHash, source)
    return { ...unit, source }
  }

  private remember(hash: string, source: SourceFiles): void {
    // A Map iterates in insertion order: re-inserting makes this the latest.
    this.byHash.delete(hash)
    this.byHash.set(hash, source)
    if (this.byHash.size > this.size) this.byHash.delete(this.byHash.keys().next().value!)
  }
}

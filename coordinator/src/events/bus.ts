import { EventEmitter } from 'node:events'

/** In-process fan-out of "something changed" signals to subscriptions; the events table is the record. */
export type BusEvent =
  | { type: 'work-available'; campaign: string }
  | { type: 'unit-done'; workerId: string; unitId: string }
  /** A unit taken from the worker running it (units/judge.ts cancelRunningVerifications): its feeds send `cancel`. */
  | { type: 'unit-cancelled'; workerId: string; unitId: string; reason: string }
  | { type: 'experiment'; campaign: string; experimentId: string; status: string }
  | { type: 'best-changed'; campaign: string; commit: string; valBpb: number | null }
  | { type: 'progress'; campaign: string; workerId: string; unitId: string }
  | { type: 'campaign'; campaign: string }
  /** A review began, got a verdict or failed (review/): the runner and the review queue listen. */
  | { type: 'review'; campaign: string; experimentId: string }
  /** A worker declared a new capacity (heartbeat): only its own feeds hear it. */
  | { type: 'capacity'; workerId: string; capacity: number }

/** A worker's assignment feed, as the bus sees it (see `Bus.feed`). */
export interface Feed {
  /** Whether the feed has room for work: only then does `work-available` wake it. */
  hungry: boolean
  off(): void
}

interface FeedEntry { workerId: string; fn: (e: BusEvent) => void }

/**
 * Feeds told of a broadcast (`best-changed`, `campaign`) per turn of the event loop. Each feed it
 * reaches wakes and sends a message; all 10,000 at once held the loop for as long as that took, and
 * every report and lease behind it waited. A slice a turn lets them through in between.
 */
export const BROADCAST_SLICE = 250

export class Bus {
  private readonly emitter = new EventEmitter()
  /** Assignment feeds by worker id, kept apart from the general listeners (see `feed`). */
  private readonly feeds = new Map<string, Set<FeedEntry>>()
  private readonly allFeeds = new Set<FeedEntry>()
  private readonly hungryFeeds = new Set<FeedEntry>()
  /** Broadcasts not yet told to every feed, oldest first (see `broadcastSlice`). */
  private readonly broadcasts: { e: BusEvent; feeds: FeedEntry[]; next: number }[] = []
  constructor() { this.emitter.setMaxListeners(0) }
  emit(e: BusEvent): void {
    this.emitter.emit('event', e)
    if (e.type === 'unit-done' || e.type === 'unit-cancelled') for (const f of this.feeds.get(e.workerId) ?? []) f.fn(e)
    else if (e.type === 'work-available') for (const f of [...this.hungryFeeds]) f.fn(e)
    else if (e.type === 'best-changed' || e.type === 'campaign') {
      this.broadcasts.push({ e, feeds: [...this.allFeeds], next: 0 })
      if (this.broadcasts.length === 1) this.broadcastSlice()
    }
  }
  /**
   * Tells the next BROADCAST_SLICE feeds of the broadcasts under way, and the rest in later turns.
   * One broadcast ends before the next begins, so a feed hears two in the order they were emitted
   * (it keeps the last best it heard). A feed closed before its turn is passed by.
   */
  private broadcastSlice(): void {
    let room = BROADCAST_SLICE
    while (room > 0 && this.broadcasts.length) {
      const b = this.broadcasts[0]
      const end = Math.min(b.next + room, b.feeds.length)
      for (let i = b.next; i < end; i++) if (this.allFeeds.has(b.feeds[i])) b.feeds[i].fn(b.e)
      room -= end - b.next
      b.next = end
      if (end === b.feeds.length) this.broadcasts.shift()
    }
    if (this.broadcasts.length) setImmediate(() => this.broadcastSlice())
  }
  /**
   * A worker's assignment feed: it hears its own `unit-done` and `unit-cancelled`, every `best-changed` and `campaign`
   * (a slice of the feeds at a time: `broadcastSlice`), and `work-available` only while it is hungry. Listeners on the general stream would hear every
   * event: with 10,000 connected workers each report (three events) and each heartbeat (one) ran
   * 10,000 listeners, and every `work-available` woke 10,000 feeds that had no room for work anyway
   * (docs/PERFORMANCE.md, "Coordinator under load").
   */
  feed(workerId: string, fn: (e: BusEvent) => void): Feed {
    const entry: FeedEntry = { workerId, fn }
    let set = this.feeds.get(workerId)
    if (!set) this.feeds.set(workerId, (set = new Set()))
    set.add(entry)
    this.allFeeds.add(entry)
    const hungry = this.hungryFeeds
    return {
      get hungry() { return hungry.has(entry) },
      set hungry(yes: boolean) {
        if (yes) hungry.add(entry)
        else hungry.delete(entry)
      },
      off: () => {
        hungry.delete(entry)
        this.allFeeds.delete(entry)
        set.delete(entry)
        if (!set.size) this.feeds.delete(workerId)
      },
    }
  }
  /** A worker's capacity, as its heartbeat declares it, to its own feeds only (never the general stream). */
  declareCapacity(workerId: string, capacity: number): void {
    for (const f of this.feeds.get(workerId) ?? []) f.fn({ type: 'capacity', workerId, capacity })
  }
  /**
   * Wakes a worker's own feeds (never the general stream): room was freed without a report (its
   * hello requeued its units, a heartbeat learnt of a cancelled unit). Its feed is not hungry while
   * it is full, so `work-available` passes it by. An expired lease does not wake it (units/leases.ts).
   */
  wakeWorker(workerId: string): void {
    for (const f of this.feeds.get(workerId) ?? []) f.fn({ type: 'work-available', campaign: '*' })
  }
  /** Workers with an assignment feed open: the connected workers. */
  get workersWithFeeds(): number {
    return this.feeds.size
  }
  onEvent(fn: (e: BusEvent) => void): () => void {
    this.emitter.on('event', fn)
    return () => this.emitter.off('event', fn)
  }
}

import { EventEmitter } from 'node:events'

/** In-process fan-out of "something changed" signals to subscriptions; the events table is the record. */
export type BusEvent =
  | { type: 'work-available'; campaign: string }
  | { type: 'unit-done'; workerId: string; unitId: string }
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

export class Bus {
  private readonly emitter = new EventEmitter()
  /** Assignment feeds by worker id, kept apart from the general listeners (see `feed`). */
  private readonly feeds = new Map<string, Set<FeedEntry>>()
  private readonly allFeeds = new Set<FeedEntry>()
  private readonly hungryFeeds = new Set<FeedEntry>()
  constructor() { this.emitter.setMaxListeners(0) }
  emit(e: BusEvent): void {
    this.emitter.emit('event', e)
    if (e.type === 'unit-done') for (const f of this.feeds.get(e.workerId) ?? []) f.fn(e)
    else if (e.type === 'work-available') for (const f of [...this.hungryFeeds]) f.fn(e)
    else if (e.type === 'best-changed' || e.type === 'campaign') for (const f of [...this.allFeeds]) f.fn(e)
  }
  /**
   * A worker's assignment feed: it hears its own `unit-done`, every `best-changed` and `campaign`,
   * and `work-available` only while it is hungry. Listeners on the general stream would hear every
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

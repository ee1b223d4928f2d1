import { EventEmitter, on } from 'node:events'

/** In-process fan-out of "something changed" signals to subscriptions; the events table is the record. */
export type BusEvent =
  | { type: 'work-available'; campaign: string }
  | { type: 'unit-done'; workerId: string; unitId: string }
  | { type: 'experiment'; campaign: string; experimentId: string; status: string }
  | { type: 'best-changed'; campaign: string; commit: string; valBpb: number | null }
  | { type: 'progress'; campaign: string; workerId: string; unitId: string }
  | { type: 'campaign'; campaign: string }

export class Bus {
  private readonly emitter = new EventEmitter()
  constructor() { this.emitter.setMaxListeners(0) }
  emit(e: BusEvent): void { this.emitter.emit('event', e) }
  /** Async iterator over events until the signal aborts. */
  stream(signal: AbortSignal): AsyncIterable<BusEvent> {
    const it = on(this.emitter, 'event', { signal })
    return (async function* () {
      try {
        for await (const [e] of it) yield e as BusEvent
      } catch (err) {
        if ((err as Error).name !== 'AbortError') throw err
      }
    })()
  }
  onEvent(fn: (e: BusEvent) => void): () => void {
    this.emitter.on('event', fn)
    return () => this.emitter.off('event', fn)
  }
}

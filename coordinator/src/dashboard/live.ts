import type { Bus, BusEvent } from '../events/bus.ts'

/**
 * What the page hears over its one WebSocket subscription: which part of a campaign changed, not
 * the data itself. The page re-reads those sections over HTTP (coalesced), so there is one way to
 * get data and a missed event costs nothing but a moment of staleness.
 */
export type LiveEvent =
  | { type: 'experiment'; campaign: string; experimentId: string; status: string }
  | { type: 'best-changed'; campaign: string; commit: string; valBpb: number | null }
  | { type: 'progress'; campaign: string; workerId: string }
  | { type: 'workers'; campaign: string | null }
  | { type: 'campaign'; campaign: string }
  | { type: 'queue'; campaign: string }
  | { type: 'review'; campaign: string; experimentId: string }
  | { type: 'resync' }

/** Maps a coordinator bus event to what the dashboard of `campaign` (null: every campaign) needs to know. */
function toLiveEvent(e: BusEvent, campaign: string | null): LiveEvent | null {
  const mine = (name: string) => campaign === null || name === campaign || name === '*'
  switch (e.type) {
    case 'experiment': return mine(e.campaign) ? { type: 'experiment', campaign: e.campaign, experimentId: e.experimentId, status: e.status } : null
    case 'best-changed': return mine(e.campaign) ? { type: 'best-changed', campaign: e.campaign, commit: e.commit, valBpb: e.valBpb } : null
    case 'progress': return mine(e.campaign) ? { type: 'progress', campaign: e.campaign, workerId: e.workerId } : null
    case 'unit-done':
    case 'unit-cancelled': return { type: 'workers', campaign: null }
    case 'campaign': return mine(e.campaign) ? { type: 'campaign', campaign: e.campaign } : null
    // Emitted when a hypothesis is added or reordered, a worker says hello, or a unit frees up.
    case 'work-available': return mine(e.campaign) ? { type: 'queue', campaign: e.campaign } : null
    case 'review': return mine(e.campaign) ? { type: 'review', campaign: e.campaign, experimentId: e.experimentId } : null
    default: return null
  }
}

/**
 * Heartbeats arrive every 5 s from every worker: with thousands of workers that is hundreds of
 * `progress` events a second, and the page only needs to know that bars moved. A tab hears at most
 * one per second (the last of a burst is delayed, never dropped); its bars move on by themselves
 * in between (web/app.js, tickWorkers).
 */
export const PROGRESS_EVERY_MS = 1000
/** A tab that cannot keep up is told to re-read everything instead of being sent a backlog. */
const MAX_QUEUED = 256

/** The live feed of one dashboard tab, until `signal` aborts. */
export async function* liveEvents(bus: Bus, campaign: string | null, signal: AbortSignal): AsyncGenerator<LiveEvent> {
  const queue: LiveEvent[] = []
  let wake: (() => void) | null = null
  let lastProgress = 0
  let trailing: ReturnType<typeof setTimeout> | null = null
  const push = (e: LiveEvent) => {
    if (queue.length >= MAX_QUEUED) queue.splice(0, queue.length, { type: 'resync' })
    else queue.push(e)
    wake?.()
  }
  const off = bus.onEvent(e => {
    const live = toLiveEvent(e, campaign)
    if (!live) return
    if (live.type !== 'progress') return push(live)
    const wait = lastProgress + PROGRESS_EVERY_MS - Date.now()
    if (wait <= 0) {
      lastProgress = Date.now()
      push(live)
    } else {
      trailing ??= setTimeout(() => {
        trailing = null
        lastProgress = Date.now()
        push(live)
      }, wait)
    }
  })
  const onAbort = () => wake?.()
  signal.addEventListener('abort', onAbort, { once: true })
  try {
    while (!signal.aborted) {
      if (!queue.length) await new Promise<void>(resolve => { wake = resolve })
      wake = null
      yield* queue.splice(0)
    }
  } finally {
    off()
    signal.removeEventListener('abort', onAbort)
    if (trailing) clearTimeout(trailing)
  }
}

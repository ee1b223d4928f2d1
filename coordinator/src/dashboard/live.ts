import type { BusEvent } from '../events/bus.ts'

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

/** Maps a coordinator bus event to what the dashboard of `campaign` (null: every campaign) needs to know. */
export function toLiveEvent(e: BusEvent, campaign: string | null): LiveEvent | null {
  const mine = (name: string) => campaign === null || name === campaign || name === '*'
  switch (e.type) {
    case 'experiment': return mine(e.campaign) ? { type: 'experiment', campaign: e.campaign, experimentId: e.experimentId, status: e.status } : null
    case 'best-changed': return mine(e.campaign) ? { type: 'best-changed', campaign: e.campaign, commit: e.commit, valBpb: e.valBpb } : null
    case 'progress': return mine(e.campaign) ? { type: 'progress', campaign: e.campaign, workerId: e.workerId } : null
    case 'unit-done': return { type: 'workers', campaign: null }
    case 'campaign': return mine(e.campaign) ? { type: 'campaign', campaign: e.campaign } : null
    // Emitted when a hypothesis is added or reordered, a worker says hello, or a unit frees up.
    case 'work-available': return mine(e.campaign) ? { type: 'queue', campaign: e.campaign } : null
    default: return null
  }
}

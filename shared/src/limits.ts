/** Upper bounds for everything a worker can send; the server refuses anything larger. */
export const LIMITS = {
  sourceBytes: 256 * 1024,
  diffBytes: 256 * 1024,
  logTailBytes: 16 * 1024,
  descriptionChars: 300,
  notesChars: 4000,
  hypothesisTitleChars: 200,
  hypothesisBodyChars: 4000,
  followUps: 3,
  nameChars: 64,
  /** Units one worker may hold at once: its pipeline depth (worker/src/loop/depth.ts). */
  capacity: 4,
  /** program.md, which every unit carries. */
  programChars: 64 * 1024,
  /** The swarm view each unit carries (shared/src/swarm.ts), rendered for the agent: ~2,500 tokens. */
  swarmViewChars: 10_000,
  /** Experiments one search of the campaign returns. */
  searchResults: 20,
  /** Campaigns a worker may send data fingerprints for (hello, and its feed, which keeps them while it lasts). */
  fingerprints: 256,
  /** Sources a worker may say it holds when it subscribes (shared/src/protocol.ts, `HeldSources`). */
  heldSources: 64,
  /** Whole HTTP/WebSocket message. */
  messageBytes: 1024 * 1024,
} as const

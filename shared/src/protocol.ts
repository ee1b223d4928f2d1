import { z } from 'zod'
import { CampaignName, CampaignSpec, Profile } from './campaign.ts'
import { Hardware } from './hardware.ts'
import { Metrics, Progress } from './metrics.ts'
import { SwarmView } from './swarm.ts'
import { LIMITS } from './limits.ts'
import { UnitKind } from './unit-kinds.ts'
import { bidiControlIn, HIDING_BUT_LINES, HIDING_CHARACTERS, hidesText } from './text.ts'

/** Display names: anything printable, stored verbatim and rendered escaped, never used as a path. */
export const DisplayName = z
  .string()
  .min(1)
  .max(LIMITS.nameChars)
  .refine(s => !hidesText(s), 'a name may not contain control characters or bidirectional controls (U+202A-U+202E, U+2066-U+2069)')

/**
 * Text one contributor writes and others read (a description, a hypothesis): in workers' logs and
 * agents, in git's log, in `coordinator export`. Control characters and bidirectional controls
 * (text.ts) become spaces rather than being refused, so an honest agent's stray line break costs
 * nothing; `multiline` keeps line breaks (CR LF as LF) and tabs. The result still meets the length bounds checked before.
 */
export function plainText(s: string, multiline = false): string {
  return multiline ? s.replace(/\r\n/g, '\n').replace(HIDING_BUT_LINES, ' ') : s.replace(HIDING_CHARACTERS, ' ')
}
/** A string of `min`-`max` characters, its control characters made spaces (`plainText`). */
export const PlainLine = (min: number, max: number) => z.string().min(min).max(max).transform(s => plainText(s))
const PlainText = (max: number) => z.string().max(max).transform(s => plainText(s, true))

export const SourceFiles = z
  .record(z.string().regex(/^[A-Za-z0-9_.-]+$/), z.string())
  .refine(files => Object.values(files).reduce((n, s) => n + s.length, 0) <= LIMITS.sourceBytes, `source files are limited to ${LIMITS.sourceBytes} bytes`)
export type SourceFiles = z.infer<typeof SourceFiles>

/** The fingerprint of a worker's prepared data, per campaign it prepared for. */
export const Fingerprints = z.record(CampaignName, z.string().max(128))
  .refine(f => Object.keys(f).length <= LIMITS.fingerprints, `fingerprints of at most ${LIMITS.fingerprints} campaigns`)

export const WorkerHello = z.object({
  name: DisplayName,
  hardware: Hardware,
  /** The fingerprint of the worker's prepared data, per campaign it prepared for. */
  fingerprints: Fingerprints.default({}),
  version: z.string().max(40),
  /** Units this worker still holds (training or spooled); others leased to it are re-queued at once. */
  holding: z.array(z.string().max(64)).max(16).default([]),
  /** Who edits train.py on this worker: `heuristic`, `claude:<model>` or `external:<command>`. */
  agent: z.string().max(80).optional(),
})
export type WorkerHello = z.infer<typeof WorkerHello>

export const HelloReply = z.object({
  workerId: z.string(),
  campaigns: z.array(z.object({
    name: CampaignName,
    spec: CampaignSpec,
    /** The URL path of the tokenizer every worker must prepare with, or null if none is pinned yet. */
    tokenizerPath: z.string().nullable(),
    /** Problem with this worker's data for the campaign, with what to do about it. */
    refused: z.string().nullable(),
    /**
     * For a `served` data source: the URL path of the manifest of the prepared data set the
     * coordinator serves (GET, worker token); the files are under the same path. Null otherwise.
     */
    dataPath: z.string().nullable().optional(),
  })),
  /**
   * Seconds until the worker's next heartbeat: the coordinator spaces heartbeats out as more
   * workers connect (every heartbeat reply says it again). Absent from older coordinators: 5.
   */
  heartbeatSeconds: z.number().positive().max(3600).optional(),
})
export type HelloReply = z.infer<typeof HelloReply>

/** The longest a coordinator spaces out a worker's heartbeats (`heartbeatSeconds`). */
export const HEARTBEAT_MAX_SECONDS = 60

/**
 * The WebSocket keep-alive of both ends: a side pings only after `idleMs` without a message from
 * the other, and drops the socket when no pong comes within `pongWaitMs`. A live worker beats at
 * least every HEARTBEAT_MAX_SECONDS and hears back, so neither end pings a live connection; a dead
 * link is found within `idleMs + pongWaitMs`. The worker's end once pinged after 10 s of quiet: at
 * 10,000 workers beating every 40 s, ~750 pings a second (docs/PERFORMANCE.md, "Seventeenth pass").
 */
export const KEEPALIVE = { idleMs: (HEARTBEAT_MAX_SECONDS + 15) * 1000, pongWaitMs: 10_000 } as const

/** A `sourceHash` (shared/src/source-hash.ts): SHA-256 of the files, names included. */
export const SourceHash = z.string().regex(/^[0-9a-f]{64}$/)

/**
 * The sources a worker holds, by hash, sent when it subscribes to its assignments. A unit whose
 * source is among them (or was sent on the same feed before) comes without it: `source` empty,
 * `sourceHash` naming it. The 23 KB train.py travelled in every unit, and most units of a
 * campaign start from the same best (docs/PERFORMANCE.md, "Coordinator under load"). A worker that
 * sends no list (older workers) always gets the full source.
 */
export const HeldSources = z.array(SourceHash).max(LIMITS.heldSources)

export const WorkUnit = z.object({
  id: z.string(),
  kind: UnitKind,
  campaign: CampaignName,
  profile: Profile,
  budgetSeconds: z.number().int().positive(),
  leaseToken: z.string(),
  leaseExpiresAt: z.number(),
  parentCommit: z.string(),
  /**
   * The files to start from: the parent's for explore/baseline, the candidate's for verify. Empty
   * when the worker holds them already (`HeldSources`): then `sourceHash` says which they are, and
   * a worker that lost them asks `worker.unitSource`.
   */
  source: SourceFiles,
  /** The hash of those files (`sourceHash`). Absent from older coordinators, which always send them. */
  sourceHash: SourceHash.optional(),
  editableFiles: z.array(z.string()),
  hypothesis: z.object({ id: z.string(), title: z.string(), body: z.string() }).nullable(),
  /** For rebase units: the diff of the idea to re-apply. */
  referenceDiff: z.string().nullable(),
  /**
   * For rebase units: the files the reference diff was made from (the candidate's parent), so the
   * worker can re-apply it with a three-way merge (`git apply --3way`) rather than a blind patch.
   */
  referenceBase: SourceFiles.nullable().optional(),
  /** Short descriptions of what was already tried on this parent, so agents avoid repeats. */
  triedOnParent: z.array(z.string()).max(200),
  /**
   * The campaign's program.md when the unit was made, and its version (the commit of it in the
   * coordinator's git store): the agent follows this, not a worker's own copy. Absent from older
   * coordinators.
   */
  program: z.object({ version: z.string().max(64), text: z.string().max(LIMITS.programChars) }).optional(),
  /** The swarm's memory around this unit's parent (shared/src/swarm.ts). */
  swarm: SwarmView.optional(),
})
export type WorkUnit = z.infer<typeof WorkUnit>

export const AssignmentEvent = z.discriminatedUnion('type', [
  z.object({ type: z.literal('unit'), unit: WorkUnit }),
  z.object({ type: z.literal('bestChanged'), campaign: CampaignName, commit: z.string(), valBpb: z.number().nullable() }),
  /** Stop this unit now: the coordinator took it back while it ran (a verification of a candidate already closed); a report of it would be refused. */
  z.object({ type: z.literal('cancel'), unitId: z.string(), reason: z.string() }),
  z.object({ type: z.literal('idle'), reason: z.string() }),
])
export type AssignmentEvent = z.infer<typeof AssignmentEvent>

export const Heartbeat = z.object({
  workerId: z.string(),
  units: z.array(z.object({ unitId: z.string(), leaseToken: z.string(), progress: Progress.nullable() })).max(8),
  /**
   * How many units the worker wants to hold from now on: its pipeline depth, which it adapts to how
   * slow its agent is compared with a training run. Replaces the capacity of its assignment feed.
   */
  capacity: z.number().int().min(1).max(LIMITS.capacity).optional(),
})
export type Heartbeat = z.infer<typeof Heartbeat>

export const ReportStatus = z.enum(['ok', 'crash', 'rejected-unsafe', 'rejected-measurement'])
export type ReportStatus = z.infer<typeof ReportStatus>

export const FollowUp = z.object({
  title: PlainLine(3, LIMITS.hypothesisTitleChars),
  body: PlainText(LIMITS.hypothesisBodyChars).default(''),
})

/** What the agent spent on one experiment (all its turns and repair attempts together). */
export const AgentUsage = z.object({
  /** `heuristic`, `claude:<model>` or `external:<command>`. */
  agent: z.string().max(80),
  /** Model calls (HTTP requests that returned a message; retries of one call count once). */
  requests: z.number().int().nonnegative().default(0),
  inputTokens: z.number().int().nonnegative().default(0),
  outputTokens: z.number().int().nonnegative().default(0),
  cacheReadTokens: z.number().int().nonnegative().default(0),
  cacheWriteTokens: z.number().int().nonnegative().default(0),
  /** US dollars at list prices; null when the model's price is unknown to the worker. */
  costUsd: z.number().nonnegative().nullable().default(null),
  /** Training attempts: 1, or more when a crash was handed back to the agent for repair. */
  attempts: z.number().int().min(1).max(10).default(1),
})
export type AgentUsage = z.infer<typeof AgentUsage>

export const Report = z.object({
  unitId: z.string(),
  leaseToken: z.string(),
  status: ReportStatus,
  /** The files that were trained (all editable files, full text); none may hold a bidirectional control (text.ts). */
  source: SourceFiles.superRefine((files, ctx) => {
    const found = bidiControlIn(files)
    if (found) ctx.addIssue({ code: 'custom', message: `${found.file}:${found.line}: ${found.message}` })
  }),
  description: PlainLine(1, LIMITS.descriptionChars),
  diff: z.string().max(LIMITS.diffBytes),
  metrics: Metrics.nullable(),
  /** Why the run's number must not count (status rejected-measurement), or why it crashed, in words. */
  rejection: PlainText(2000).optional(),
  logTail: z.string().max(LIMITS.logTailBytes),
  agentNotes: PlainText(LIMITS.notesChars).default(''),
  followUps: z.array(FollowUp).max(LIMITS.followUps).default([]),
  timings: z.object({ agentSeconds: z.number().nonnegative(), runSeconds: z.number().nonnegative() }),
  /** Token usage and cost of the agent for this experiment. */
  agentUsage: AgentUsage.optional(),
  /** The worker's GPU duty cycle so far: seconds the trainer ran / seconds the worker held work. */
  dutyCycle: z.number().min(0).max(1).optional(),
  /**
   * Not trained: `worker.known` said this exact source was already measured on the worker's class
   * as this experiment (DESIGN §8: an identical train.py is never trained twice). `metrics` is null.
   */
  reused: z.object({ experimentId: z.string().max(64) }).optional(),
})
export type Report = z.infer<typeof Report>
export type ReportInput = z.input<typeof Report>

export const ReportReply = z.object({
  experimentId: z.string(),
  /** What the coordinator decided, in words, e.g. "kept: new best 1.234 (was 1.250)". */
  decision: z.string(),
  duplicate: z.boolean(),
})
export type ReportReply = z.infer<typeof ReportReply>

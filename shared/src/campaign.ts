import { z } from 'zod'

/** Campaign names end up in git branch names and URLs, so they are kept to a safe alphabet. */
export const CampaignName = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'a campaign name is 1-63 lowercase letters, digits or dashes, starting with a letter or digit')

export const Profile = z.enum(['gpu', 'cpu-tiny'])
export type Profile = z.infer<typeof Profile>

/**
 * How the ratchet treats noise (DESIGN §7, docs/RATCHET.md). The defaults come from the
 * simulation in bench/ratchet: a lenient screen on the author's run, then a strict verdict once
 * other workers have re-run the candidate.
 */
export const NoisePolicy = z.object({
  /** σ of val_bpb assumed until enough repeated measurements exist. */
  priorSigma: z.number().positive().default(0.01),
  /** Smallest improvement worth keeping, in val_bpb; also the harm a simplification may cost. */
  minDelta: z.number().nonnegative().default(0.001),
  /** Standard errors an improvement must clear in the verdict, with the verifications in. */
  z: z.number().positive().default(2.25),
  /** Standard errors the author's own run must clear to earn verification runs at all. */
  screenZ: z.number().nonnegative().default(1),
  /**
   * Standard errors a simplification (a change that deletes lines) must stay within minDelta by, on
   * the other contributors' runs: Δ + simplificationZ·SE ≤ minDelta. 0 merges on the point estimate,
   * which lets a harmful deletion through as often as noise hides it (docs/RATCHET.md, "Simplifications").
   */
  simplificationZ: z.number().nonnegative().default(1),
  /** Verification runs (by workers of other contributors) needed before a merge; 0 keeps single runs. */
  replications: z.number().int().min(0).max(10).default(3),
  /** Baseline runs of each best per hardware class, for a tight parent mean. */
  baselineRuns: z.number().int().min(1).max(10).default(4),
  /**
   * Let a candidate's own contributor verify it (the author's worker or another of the same
   * token): only for campaigns with a single contributor per class. Off, verifications count only
   * from other contributors' workers.
   */
  allowSelfVerification: z.boolean().default(false),
  /** An improvement larger than this is suspicious until someone else reproduces it. */
  maxImprovement: z.number().positive().default(0.25),
  /** Allowed relative deviation of training_seconds from the budget. */
  budgetTolerance: z.number().positive().lt(1).default(0.25),
  /**
   * How a verdict is reached (docs/RATCHET.md): `fixed`, a screen then `replications`
   * verifications then a verdict; `sequential`, one sequential test from the claim on, its merge
   * bar set by the campaign's observed rate of real gains, a change's evidence carried onto a newer
   * best; `pooled`, `sequential` with every approved class's verifications as evidence (each
   * class's Δ against its own parent runs, in its own σ) and verifications drawn on any approved
   * class; `parallel`, `pooled` with several runs per look, a candidate whose parent was replaced
   * moved onto the best at its next look, and wild runs tamed (a parent run far from its median
   * left out, a candidate run counted at most 3σ from the parent's mean).
   * `parallel` is the default (session 15): in the grid simulation it costs fewer runs per merge,
   * keeps more of the real gains and merges no more false ones than `fixed` at 16 workers, and at
   * one worker it holds false merges under the 2 % target where `fixed` does not (docs/RATCHET.md,
   * "The default policy"). A campaign stored without a policy (made before policies existed) keeps
   * `fixed`: the settings read the stored spec as it is.
   */
  policy: z.enum(['fixed', 'sequential', 'pooled', 'parallel']).default('parallel'),
})
export type NoisePolicy = z.infer<typeof NoisePolicy>

/**
 * Who must approve a candidate's diff before the branch moves to it (docs/RATCHET.md, "The review
 * gate"): the ratchet says a change is *faster*, the review says it is *fair* (no metric
 * tampering, no validation data, no clock games). `agent`: a Claude reviewer on the coordinator;
 * `maintainer`: a person on the dashboard; both; or `none` (a trusted, private campaign).
 */
export const ReviewMode = z.enum(['agent', 'maintainer', 'agent+maintainer', 'none'])
export type ReviewMode = z.infer<typeof ReviewMode>

/**
 * Where a campaign's text comes from; every worker prepares exactly this, with the campaign's
 * tokenizer, so every fingerprint matches (trainer/prepare.py, "Sources").
 * - `embedded`: the demo corpus that ships with the checkout; every worker prepares it itself.
 * - `climbmix`: the public parquet shards; every worker downloads `shards` training shards and the
 *   pinned validation shard (needs pyarrow and the network).
 * - `served`: a folder only the coordinator has (`--source dir:PATH`); the coordinator prepares it
 *   once and serves the prepared data set to workers (GET /data/<campaign>/…), who download it.
 */
export const DataSource = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('embedded') }),
  z.object({ kind: z.literal('climbmix'), shards: z.number().int().min(1).max(6542) }),
  z.object({ kind: z.literal('served'), label: z.string().max(80) }),
])
export type DataSource = z.infer<typeof DataSource>

/** The source as prepare.py's `--source` spells it; null for `served` (workers download it instead). */
export function prepareSourceFlags(source: DataSource): string[] | null {
  if (source.kind === 'embedded') return ['--source', 'embedded']
  if (source.kind === 'climbmix') return ['--source', 'climbmix', '--num-shards', String(source.shards)]
  return null
}

/** In words, for logs and the dashboard: `embedded`, `climbmix (10 shards)`, `served by the coordinator (emails)`. */
export function describeSource(source: DataSource): string {
  if (source.kind === 'climbmix') return `climbmix (${source.shards} shard${source.shards === 1 ? '' : 's'})`
  if (source.kind === 'served') return `served by the coordinator (${source.label})`
  return 'embedded'
}

export const CampaignSpec = z.object({
  budgetSeconds: z.number().int().min(1).max(24 * 3600),
  profile: Profile,
  metric: z.literal('val_bpb').default('val_bpb'),
  direction: z.literal('lower').default('lower'),
  editableFiles: z.array(z.string().regex(/^[A-Za-z0-9_.-]+\.py$/)).min(1).default(['train.py']),
  /** Data fingerprint every worker must reproduce (null until the first worker prepared the data). */
  fingerprint: z.string().regex(/^[0-9a-f]{16,128}$/).nullable().default(null),
  vocabSize: z.number().int().min(256).max(65536).default(8192),
  /** The data every worker prepares (absent in campaigns made before it existed: embedded). */
  data: DataSource.default({ kind: 'embedded' }),
  noise: NoisePolicy.default(NoisePolicy.parse({})),
  /** Review before merge; campaigns stored before it existed read as the default. */
  review: ReviewMode.default('agent'),
})
export type CampaignSpec = z.infer<typeof CampaignSpec>
export type CampaignSpecInput = z.input<typeof CampaignSpec>

export const CampaignStatus = z.enum(['active', 'paused'])
export type CampaignStatus = z.infer<typeof CampaignStatus>

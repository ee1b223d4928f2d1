/**
 * The data model (DESIGN §5). This file is its documentation: every table a coordinator keeps,
 * what each column means, and how rows relate. Migrations under coordinator/drizzle/ are generated
 * from it with `pnpm --filter @autoresearch-grid/coordinator db:generate` and never edited by hand.
 */
import { sql } from 'drizzle-orm'
import { blob, index, integer, real, sqliteTable, text, uniqueIndex } from 'drizzle-orm/sqlite-core'
import { EXPERIMENT_STATUSES, HYPOTHESIS_STATUSES, UNIT_KINDS, UNIT_STATES } from '@autoresearch-grid/shared'

const now = sql`(unixepoch('subsec') * 1000)`
const createdAt = () => integer('created_at').notNull().default(now)

/** A research campaign: one branch of accepted bests, one spec (budget, metric, noise policy). */
export const campaigns = sqliteTable('campaigns', {
  name: text('name').primaryKey(),
  branch: text('branch').notNull(),
  /** CampaignSpec as JSON (shared/src/campaign.ts). */
  spec: text('spec', { mode: 'json' }).notNull(),
  status: text('status', { enum: ['active', 'paused'] }).notNull().default('active'),
  /** The commit at the tip of the campaign branch: the current best. */
  bestCommit: text('best_commit').notNull(),
  /** Path of the campaign's tokenizer file inside the data dir, served to workers. */
  tokenizerFile: text('tokenizer_file'),
  createdAt: createdAt(),
})

/** A person (or lab) who contributes GPUs; workers and tokens belong to one. */
export const contributors = sqliteTable('contributors', {
  id: text('id').primaryKey(),
  name: text('name').notNull().unique(),
  email: text('email'),
  /**
   * When the maintainer last cleared this contributor of suspicion: unreproduced claims before it
   * no longer make the contributor a suspect (units/suspects.ts).
   */
  suspectClearedAt: integer('suspect_cleared_at'),
  createdAt: createdAt(),
}, t => [index('contributors_cleared').on(t.suspectClearedAt)])

/** Bearer tokens: only a SHA-256 hash is stored; revoking sets revoked_at. */
export const tokens = sqliteTable('tokens', {
  id: text('id').primaryKey(),
  kind: text('kind', { enum: ['worker', 'admin'] }).notNull(),
  contributorId: text('contributor_id').references(() => contributors.id),
  hash: text('hash').notNull().unique(),
  label: text('label').notNull(),
  revokedAt: integer('revoked_at'),
  createdAt: createdAt(),
})

/** One GPU loop of a contributor. */
export const workers = sqliteTable('workers', {
  id: text('id').primaryKey(),
  name: text('name').notNull(),
  contributorId: text('contributor_id').notNull().references(() => contributors.id),
  hardware: text('hardware', { mode: 'json' }).notNull(),
  hardwareClass: text('hardware_class').notNull(),
  lastSeen: integer('last_seen').notNull(),
  banned: integer('banned', { mode: 'boolean' }).notNull().default(false),
  createdAt: createdAt(),
}, t => [uniqueIndex('workers_contributor_name').on(t.contributorId, t.name)])

/** An idea to try: from the maintainer, an agent's follow-up, or the system. */
export const hypotheses = sqliteTable('hypotheses', {
  id: text('id').primaryKey(),
  campaign: text('campaign').notNull().references(() => campaigns.name),
  title: text('title').notNull(),
  body: text('body').notNull().default(''),
  source: text('source', { enum: ['maintainer', 'agent', 'system'] }).notNull(),
  author: text('author'),
  priority: integer('priority').notNull().default(0),
  status: text('status', { enum: HYPOTHESIS_STATUSES }).notNull().default('open'),
  dedupKey: text('dedup_key').notNull(),
  duplicateOf: text('duplicate_of'),
  parentExperiment: text('parent_experiment'),
  /** The contributor whose worker proposed it (agent hypotheses): what the proposal quota counts. */
  contributorId: text('contributor_id'),
  createdAt: createdAt(),
}, t => [index('hypotheses_campaign_status').on(t.campaign, t.status), index('hypotheses_contributor').on(t.contributorId, t.status)])

/** A unit of work handed to a worker under a lease. */
export const workUnits = sqliteTable('work_units', {
  id: text('id').primaryKey(),
  kind: text('kind', { enum: UNIT_KINDS }).notNull(),
  campaign: text('campaign').notNull().references(() => campaigns.name),
  hypothesisId: text('hypothesis_id'),
  parentCommit: text('parent_commit').notNull(),
  /** For verify units: the commit to re-measure; for rebase units: the experiment to re-apply. */
  targetCommit: text('target_commit'),
  targetExperiment: text('target_experiment'),
  /** Only workers of this class may take it (baselines, verifications); null = any. */
  hardwareClass: text('hardware_class'),
  /** A worker that must not take it (a candidate's own worker cannot verify it). */
  excludedWorker: text('excluded_worker'),
  /**
   * verify: contributors none of whose workers may take it, as a JSON array: the candidate's author
   * (and a carried candidate's origin author), and while too few distinct contributors have
   * verified, those who have. Rewritten at every decision on the candidate. rebase: contributors
   * whose rebase of the same idea failed on their own word (units/rebase-retry.ts).
   */
  excludedContributors: text('excluded_contributors', { mode: 'json' }).$type<string[]>(),
  /**
   * verify: the eligible worker drawn at random to run it, and until when only that worker may
   * take it (then another is drawn): the author cannot predict, or time, who verifies.
   */
  reservedFor: text('reserved_for'),
  reservedUntil: integer('reserved_until'),
  workerId: text('worker_id'),
  leaseToken: text('lease_token'),
  leaseExpiresAt: integer('lease_expires_at'),
  /**
   * When the current lease began (or the restart that extended it): heartbeats renew a lease for at
   * most `maxHoldSeconds` from here (units/leases.ts), then the unit goes back to the queue.
   */
  leasedAt: integer('leased_at'),
  attempts: integer('attempts').notNull().default(0),
  state: text('state', { enum: UNIT_STATES }).notNull().default('queued'),
  /** Last progress from heartbeats, as JSON. */
  progress: text('progress', { mode: 'json' }),
  createdAt: createdAt(),
  updatedAt: integer('updated_at').notNull().default(now),
}, t => [
  index('work_units_state').on(t.state, t.campaign),
  index('work_units_worker').on(t.workerId, t.state),
  // The scheduler's questions, in time independent of how many units are leased or queued
  // (units/assign.ts): running baselines of a campaign, the oldest queued units of a kind (in the
  // index's order, so a lease reads its window and not the whole queue: with (campaign, kind, state)
  // alone every queued unit of the kind was read and sorted, 1,400 verifications a lease at 10,000
  // workers), and what was tried or is being tried of a hypothesis on a parent.
  index('work_units_queue').on(t.campaign, t.kind, t.state, t.createdAt, t.id),
  index('work_units_hypothesis').on(t.hypothesisId, t.parentCommit),
  // A candidate's verification units, counted or cancelled at each decision on it (units/judge.ts).
  index('work_units_target').on(t.targetExperiment),
])

/** Everything a worker trained and reported, kept or not. */
export const experiments = sqliteTable('experiments', {
  id: text('id').primaryKey(),
  unitId: text('unit_id').notNull().unique(),
  campaign: text('campaign').notNull().references(() => campaigns.name),
  kind: text('kind', { enum: UNIT_KINDS }).notNull(),
  workerId: text('worker_id').notNull(),
  contributorId: text('contributor_id').notNull(),
  hardwareClass: text('hardware_class').notNull(),
  hypothesisId: text('hypothesis_id'),
  parentCommit: text('parent_commit').notNull(),
  /** The commit of the trained source, under refs/experiments/<id>. */
  commit: text('commit').notNull(),
  description: text('description').notNull(),
  diff: text('diff').notNull(),
  sourceHash: text('source_hash').notNull(),
  /** Lines added minus deleted in the editable files (negative: a simplification), from git. */
  linesDelta: integer('lines_delta').notNull().default(0),
  metrics: text('metrics', { mode: 'json' }),
  valBpb: real('val_bpb'),
  /**
   * pending: waiting for a baseline or for verifications; merging: accepted, the branch is being
   * moved; kept: on the branch; measured: a baseline or verification run; stale: promising, but the
   * best moved on (its change is merged onto the new best or re-applied by a rebase unit);
   * awaiting-review: the ratchet accepted it, and its diff waits for the review its campaign asks
   * for (the reviews table) before the branch moves; a rejection makes it `rejected`.
   */
  status: text('status', { enum: EXPERIMENT_STATUSES }).notNull(),
  decision: text('decision').notNull().default(''),
  /**
   * The ratchet's reason code with the decision (ratchet/decide.ts: e.g. unreproduced-improvement),
   * or `rejected-measurement` when the worker's trusted evaluator refused the run.
   */
  reason: text('reason'),
  logTail: text('log_tail').notNull().default(''),
  agentNotes: text('agent_notes').notNull().default(''),
  timings: text('timings', { mode: 'json' }),
  /**
   * A rebase's code is its origin's change re-applied on the new best (units/rebase-content.ts):
   * only then does it carry the origin's evidence. False: a change of its own, judged as an original
   * (and the origin's rebase is queued again). Null for every other experiment, and for rebases
   * recorded before this column (carried, as they were).
   */
  carriesOrigin: integer('carries_origin', { mode: 'boolean' }),
  createdAt: createdAt(),
}, t => [
  index('experiments_campaign').on(t.campaign, t.createdAt),
  index('experiments_source').on(t.sourceHash, t.hardwareClass),
  // What was tried on a parent (sent with every unit) and candidates waiting for a parent's baseline.
  index('experiments_parent').on(t.campaign, t.parentCommit, t.createdAt),
  // A contributor's unreproduced claims, counted at every lease (units/suspects.ts).
  index('experiments_reason').on(t.campaign, t.reason, t.contributorId),
  // The campaign's decided candidates by status, counted at every sequential decision
  // (units/sequential-inputs.ts realRateOfCampaign; measured ones only): covering, so the count
  // reads no row.
  index('experiments_decided').on(t.campaign, t.status, t.kind, t.valBpb),
])

/** A val_bpb sample of a commit on a hardware class (baselines, verifications, candidates). */
export const measurements = sqliteTable('measurements', {
  id: integer('id').primaryKey({ autoIncrement: true }),
  campaign: text('campaign').notNull(),
  commit: text('commit').notNull(),
  hardwareClass: text('hardware_class').notNull(),
  valBpb: real('val_bpb').notNull(),
  experimentId: text('experiment_id').notNull(),
  workerId: text('worker_id').notNull(),
  /** The unit kind that produced it: explore runs are selected for looking good, so σ leaves them out. */
  kind: text('kind', { enum: UNIT_KINDS }).notNull().default('baseline'),
  trainingSeconds: real('training_seconds').notNull().default(0),
  createdAt: createdAt(),
}, t => [index('measurements_commit').on(t.campaign, t.commit, t.hardwareClass)])

/**
 * Verification runs one contributor's workers measured for another contributor's candidates, per
 * campaign (units/reciprocity.ts): verifications go to a contributor's candidates while it has not
 * taken far more of another's time than it gave back (scheduler/next-unit.ts, `outOfCredit`).
 * Counted from session 17 on (a campaign older than that starts at none).
 */
export const verifyExchange = sqliteTable('verify_exchange', {
  campaign: text('campaign').notNull(),
  /** The contributor whose worker ran the verification. */
  verifier: text('verifier').notNull(),
  /** The contributor whose candidate it verified. */
  author: text('author').notNull(),
  runs: integer('runs').notNull().default(0),
}, t => [uniqueIndex('verify_exchange_pair').on(t.campaign, t.verifier, t.author), index('verify_exchange_author').on(t.campaign, t.author)])

/** A move of the campaign branch to a better commit; revertible by the maintainer. */
export const merges = sqliteTable('merges', {
  id: text('id').primaryKey(),
  campaign: text('campaign').notNull(),
  experimentId: text('experiment_id').notNull(),
  bestBefore: text('best_before').notNull(),
  bestAfter: text('best_after').notNull(),
  valBefore: real('val_before').notNull(),
  valAfter: real('val_after').notNull(),
  delta: real('delta').notNull(),
  sigma: real('sigma'),
  samples: text('samples', { mode: 'json' }),
  verifiers: text('verifiers', { mode: 'json' }),
  hardwareClass: text('hardware_class').notNull(),
  reverted: integer('reverted', { mode: 'boolean' }).notNull().default(false),
  /** Who approved the diff: "<model> (agent)", "maintainer (maintainer)", or "none" when the campaign merges unreviewed. */
  reviewer: text('reviewer'),
  /** Their reasons, as recorded in the review (and in the merge commit's trailer). */
  reviewReason: text('review_reason'),
  createdAt: createdAt(),
}, t => [
  // A campaign's merges newest first (the dashboard's history, every page load), and an
  // experiment's merge (a late verification of a merged candidate): both read the whole table before.
  index('merges_campaign').on(t.campaign, t.createdAt),
  index('merges_experiment').on(t.experimentId),
])

const REVIEW_MODES = ['agent', 'maintainer', 'agent+maintainer', 'none'] as const
const VERDICTS = ['approve', 'reject'] as const

/**
 * The review of one candidate the ratchet accepted (review/policy.ts): who must approve, what each
 * reviewer said, and the ratchet's decision to carry out once approved. One row per candidate;
 * the agent's and the maintainer's verdicts are columns, since there are exactly two reviewers.
 */
export const reviews = sqliteTable('reviews', {
  id: text('id').primaryKey(),
  campaign: text('campaign').notNull(),
  experimentId: text('experiment_id').notNull().unique(),
  /** The mode the campaign asked for when the review began. */
  requested: text('requested', { enum: REVIEW_MODES }).notNull(),
  /** The mode applied: the request, or its fallback when no agent is configured (then `warning` says so). */
  mode: text('mode', { enum: REVIEW_MODES }).notNull(),
  warning: text('warning'),
  /** pending: waiting for a verdict; superseded: the best moved on meanwhile (the candidate went the stale way). */
  state: text('state', { enum: ['pending', 'approved', 'rejected', 'superseded'] }).notNull(),
  /** The ratchet's merge decision (evidence, samples, verifiers), carried out after approval. */
  decision: text('decision', { mode: 'json' }).notNull(),
  agentModel: text('agent_model'),
  agentVerdict: text('agent_verdict', { enum: VERDICTS }),
  agentReason: text('agent_reason'),
  /** The agent's concerns: [{ file, line, severity, text }]. */
  agentConcerns: text('agent_concerns', { mode: 'json' }),
  /** Failed calls so far (outages, malformed answers): each is retried, none is a verdict. */
  agentFailures: integer('agent_failures').notNull().default(0),
  agentError: text('agent_error'),
  /** When the agent may be asked (again); null: at once. */
  agentNextAt: integer('agent_next_at'),
  agentAt: integer('agent_at'),
  maintainerVerdict: text('maintainer_verdict', { enum: VERDICTS }),
  maintainerReason: text('maintainer_reason'),
  maintainerAt: integer('maintainer_at'),
  createdAt: createdAt(),
  decidedAt: integer('decided_at'),
}, t => [index('reviews_state').on(t.state, t.campaign)])
/**
 * Hardware classes of a campaign the maintainer has ruled on. A class counts toward merges when it
 * is approved here, when it is the campaign's founding class (its first measurement), or once
 * enough distinct contributors reproduced the best on it (classes/approval.ts).
 */
export const hardwareClasses = sqliteTable('hardware_classes', {
  campaign: text('campaign').notNull(),
  hardwareClass: text('hardware_class').notNull(),
  approved: integer('approved', { mode: 'boolean' }).notNull().default(false),
  /** Who approved it: `maintainer` or `reproduced` (automatic, see classes/approval.ts). */
  approvedBy: text('approved_by'),
  /** Let a candidate's own contributor verify it on this class (a class with one contributor). */
  allowSelfVerification: integer('allow_self_verification', { mode: 'boolean' }).notNull().default(false),
  updatedAt: integer('updated_at').notNull().default(now),
}, t => [uniqueIndex('hardware_classes_campaign_class').on(t.campaign, t.hardwareClass)])

/** Append-only audit log; drives the live UI. */
export const events = sqliteTable('events', {
  id: integer('id').primaryKey({ autoIncrement: true }),
  campaign: text('campaign'),
  type: text('type').notNull(),
  payload: text('payload', { mode: 'json' }).notNull(),
  createdAt: createdAt(),
}, t => [index('events_campaign').on(t.campaign, t.id)])

/**
 * The prepared data set a coordinator serves for a campaign whose data only it has (a `served`
 * source, made from `campaign create --source dir:PATH`): workers download these files instead of
 * preparing the source themselves (campaigns/data.ts).
 */
export const campaignData = sqliteTable('campaign_data', {
  campaign: text('campaign').primaryKey().references(() => campaigns.name),
  /** What prepare.py was given, e.g. `dir:/data/emails` (the maintainer's path; never sent to workers). */
  source: text('source').notNull(),
  /** The prepared data set folder (prepare.py's layout), absolute. */
  dir: text('dir').notNull(),
  /** DatasetManifest as JSON: each file's name, size, sha256 and who may read it. */
  manifest: text('manifest', { mode: 'json' }).notNull(),
  createdAt: createdAt(),
})

/**
 * What the swarm knows about a unit beyond its lease (swarm/, campaigns/program.ts): the program.md
 * version it was handed out under, and the candidate its worker's agent chose before training (a
 * claim), so other agents see edits in flight and never pick the same one on the same parent.
 */
export const unitContext = sqliteTable('unit_context', {
  unitId: text('unit_id').primaryKey(),
  campaign: text('campaign').notNull(),
  parentCommit: text('parent_commit').notNull(),
  /** The commit of program.md (refs/programs/<campaign>) the unit carried; null before it had one. */
  programVersion: text('program_version'),
  /** sha256 of the candidate's editable files (shared/src/source-hash.ts), once claimed. */
  claimHash: text('claim_hash'),
  claimDescription: text('claim_description'),
  /** Constants the candidate changes (`NAME old -> new`), as JSON. */
  claimChanges: text('claim_changes', { mode: 'json' }),
  /** The agent that made the candidate: `heuristic`, `claude:<model>`, … */
  agent: text('agent'),
  claimedAt: integer('claimed_at'),
  createdAt: createdAt(),
}, t => [index('unit_context_parent').on(t.campaign, t.parentCommit, t.claimHash)])

/**
 * Which program.md a campaign follows now. The text and its history (author, time, message) live in
 * the git store under refs/programs/<campaign> (campaigns/program.ts); this row points at the current
 * commit so every lease can tell, without asking git, whether its cached copy is still current.
 */
export const campaignPrograms = sqliteTable('campaign_programs', {
  campaign: text('campaign').primaryKey().references(() => campaigns.name),
  /** The commit of refs/programs/<campaign> that holds the current program.md. */
  version: text('version').notNull(),
  updatedAt: integer('updated_at').notNull(),
})

/**
 * Git objects written before their pack is in place (git/store.ts `objects: 'staged'`,
 * db/object-stage.ts): a report's blob, tree and commit, kept here from its transaction's sync until
 * a pack holds them (then deleted, within a second). Rows left by a crash are written at the next start.
 */
export const stagedObjects = sqliteTable('staged_objects', {
  /** The object's id in the repository's format (hex). */
  id: text('id').primaryKey(),
  type: text('type', { enum: ['blob', 'tree', 'commit'] }).notNull(),
  /** The object's body, without git's header. */
  body: blob('body', { mode: 'buffer' }).notNull(),
})

/**
 * The decided candidates of each campaign by status (explorations and rebases with a measured
 * val_bpb, kept, discarded or rejected): the campaign's observed rate of real gains, read at every
 * sequential decision (units/sequential-inputs.ts realRateOfCampaign). Kept by triggers on
 * `experiments` (drizzle/0010_decided_counts.sql), so every writer keeps it exact; counting the
 * covering index instead read every decided experiment of the campaign at every decision, 8.6 % of
 * the coordinator's CPU at 10,000 workers (docs/PERFORMANCE.md, "Fifteenth pass").
 */
export const decidedCounts = sqliteTable('decided_counts', {
  campaign: text('campaign').notNull(),
  status: text('status', { enum: EXPERIMENT_STATUSES }).notNull(),
  n: integer('n').notNull(),
}, t => [uniqueIndex('decided_counts_key').on(t.campaign, t.status)])

import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { openDb } from './db/open.ts'
import { sqliteObjectStage } from './db/object-stage.ts'
import { GitStore, type GitStoreOptions } from './git/store.ts'
import { Bus } from './events/bus.ts'
import { DEFAULT_SETTINGS, ProcessState, type Ctx, type Settings } from './context.ts'
import { syncBranches } from './campaigns/campaigns.ts'
import { expireLeases } from './units/leases.ts'
import { pruneEvents } from './events/retention.ts'
import { recoverMerges } from './units/merge.ts'
import { restoreExperimentRefs } from './units/experiment-refs.ts'
import { startReviewRunner, type ReviewRunner } from './review/runner.ts'
import { supersedeAll } from './review/verdicts.ts'
import { MERGE_STEPS } from './units/merge.ts'

/** How often the event log's old traffic is pruned (events/retention.ts). */
const EVENT_PRUNE_MS = 60_000

/** Opens a coordinator's state in a data dir: `coordinator.db` (SQLite) and `git/` (the code). */
export async function openCoordinator(dataDir: string, settings: Partial<Settings> = {}, gitOptions: GitStoreOptions = {}): Promise<Ctx & { reviewRunner: ReviewRunner; close(): Promise<void> }> {
  await mkdir(dataDir, { recursive: true })
  const db = openDb(join(dataDir, 'coordinator.db'))
  // Objects staged in the database until a pack holds them, unless the caller asks for another way.
  const objects = gitOptions.objects ?? 'staged'
  const git = await GitStore.open(join(dataDir, 'git'), { ...gitOptions, objects, stage: objects === 'staged' ? gitOptions.stage ?? sqliteObjectStage(db.$client) : undefined })
  const ctx: Ctx = { db, git, bus: new Bus(), dataDir, settings: { ...DEFAULT_SETTINGS, ...settings }, now: Date.now, state: new ProcessState() }
  await syncBranches(ctx)
  await restoreExperimentRefs(ctx)
  await recoverMerges(ctx)
  const timer = setInterval(() => expireLeases(ctx), Math.max(250, ctx.settings.pollMs))
  timer.unref()
  // The audit log's traffic (leases, hellos) goes after a week; a pass is a few short transactions.
  const pruned = { id: 0 }
  const prune = () => {
    try { pruneEvents(db, { now: ctx.now(), retentionMs: ctx.settings.eventRetentionMs, pruned }) } catch (e) { process.emitWarning(`pruning the event log failed (it is tried again in a minute): ${(e as Error).message}`) }
  }
  // A first pass soon after start (a coordinator restarted often still prunes), then every minute.
  const firstPrune = setTimeout(prune, 1000)
  firstPrune.unref()
  const pruner = setInterval(prune, EVENT_PRUNE_MS)
  pruner.unref()
  // A review left pending while the best moved (a crash in between) goes the stale way now;
  // reviews still owed by the agent are picked up by the runner's first pass.
  await supersedeAll(ctx, MERGE_STEPS)
  const reviewRunner = startReviewRunner(ctx, MERGE_STEPS)
  // Closed at once; the promise resolves when git's files on their way are written (a caller that
  // removes the data dir next waits for it).
  return { ...ctx, reviewRunner, close: () => { reviewRunner.stop(); clearInterval(timer); clearTimeout(firstPrune); clearInterval(pruner); const quiet = git.close(); db.$client.close(); return quiet } }
}

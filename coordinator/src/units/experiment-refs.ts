import { inArray } from 'drizzle-orm'
import { CANDIDATE_KINDS } from '@autoresearch-grid/shared'
import type { Ctx } from '../context.ts'
import { experiments } from '../db/schema.ts'
import { logEvent } from '../events/log.ts'

/**
 * Every experiment with code of its own (explore and rebase units: trained, merged onto a newer
 * best, or reused) has `refs/experiments/<id>` naming its commit (DESIGN §6). Reports, three-way
 * merges and reuses queue the ref after their transaction, and it is written with the others of
 * the next ~50 ms (GitStore.setRefSoon), so a crash can leave the experiments of that moment without
 * their refs. Run at start: puts back every ref that is missing (the commit was written before the
 * transaction, so it is there). Returns their ids.
 */
export async function restoreExperimentRefs(ctx: Ctx): Promise<string[]> {
  const have = await ctx.git.refs('refs/experiments/')
  const rows = ctx.db.select({ id: experiments.id, commit: experiments.commit, campaign: experiments.campaign }).from(experiments)
    .where(inArray(experiments.kind, [...CANDIDATE_KINDS])).all()
  const restored: string[] = []
  for (const e of rows) {
    if (have.has(`refs/experiments/${e.id}`)) continue
    try {
      await ctx.git.setRef(`refs/experiments/${e.id}`, e.commit)
    } catch (err) {
      // Only a lost git object gets here (a disk, not a crash): start anyway, and say so.
      logEvent(ctx.db, e.campaign, 'ref-lost', { experiment: e.id, commit: e.commit, error: (err as Error).message.slice(0, 500) })
      continue
    }
    logEvent(ctx.db, e.campaign, 'ref-restored', { experiment: e.id, commit: e.commit })
    restored.push(e.id)
  }
  return restored
}

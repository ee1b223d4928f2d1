import { and, eq } from 'drizzle-orm'
import type { Ctx } from '../context.ts'
import { campaigns, events, experiments, measurements, merges } from '../db/schema.ts'
import { logEvent } from '../events/log.ts'
import { getCampaign } from './campaigns.ts'
import { UserError } from '../errors.ts'

/** Who a revert commit is by: the maintainer asked for it on the dashboard or the API. */
const MAINTAINER = { name: 'maintainer', email: 'maintainer@autoresearch-grid.local' }

type Merge = typeof merges.$inferSelect

/**
 * The merges that stand between the current best and the state before `target`, newest first,
 * ending with `target`; null when `target` is no longer on the branch. Earlier reverts are read
 * through: a revert commit stands for the commit whose files it restored.
 */
function mergesSince(app: Ctx, campaign: string, best: string, target: Merge): Merge[] | null {
  const live = app.db.select().from(merges).where(and(eq(merges.campaign, campaign), eq(merges.reverted, false))).all()
  const byAfter = new Map(live.map(m => [m.bestAfter, m]))
  const restored = new Map(app.db.select({ payload: events.payload }).from(events)
    .where(and(eq(events.campaign, campaign), eq(events.type, 'merge-reverted'))).all()
    .map(r => r.payload as { commit: string; restores: string }).map(p => [p.commit, p.restores]))
  const chain: Merge[] = []
  let at = best
  for (let guard = 0; guard < 100_000; guard++) {
    const m = byAfter.get(at)
    if (m) {
      chain.push(m)
      if (m.id === target.id) return chain
      at = m.bestBefore
    } else if (restored.has(at)) {
      at = restored.get(at)!
    } else {
      return null
    }
  }
  return null
}

/**
 * Takes a merge back without rewriting history: a new commit on the campaign branch, child of the
 * current best, restores the files of the best before that merge. Merges made on top of it were
 * measured against it, so they go too (the reply lists them). The database is the truth for the
 * best (syncBranches brings the ref in line after a crash), so the ref moves after the row does.
 */
export async function revertMerge(app: Ctx, mergeId: string): Promise<{ commit: string; reverted: string[]; valBpb: number }> {
  const target = app.db.select().from(merges).where(eq(merges.id, mergeId)).get()
  if (!target) throw new UserError(`no merge "${mergeId}"`, 'not-found')
  if (target.reverted) throw new UserError(`merge "${mergeId}" was already reverted`, 'conflict')
  const c = getCampaign(app, target.campaign)!
  const chain = mergesSince(app, c.name, c.bestCommit, target)
  if (!chain) throw new UserError(`merge "${mergeId}" is no longer on the branch of "${c.name}": nothing to revert`, 'conflict')
  const exp = app.db.select({ description: experiments.description }).from(experiments).where(eq(experiments.id, target.experimentId)).get()
  const files = await app.git.readFiles(target.bestBefore, c.spec.editableFiles)
  const others = chain.length - 1
  const message = `revert: ${exp?.description ?? target.experimentId}\n\n` +
    `Restores ${c.spec.editableFiles.join(', ')} as of ${target.bestBefore.slice(0, 12)}, the best before merge ${target.id} ` +
    `(Δ ${target.delta.toFixed(6)} on ${target.hardwareClass})${others ? `, and so also reverts the ${others} merge(s) made on top of it` : ''}.\n` +
    `campaign: ${c.name}`
  const commit = await app.git.commit({ files, parents: [c.bestCommit], message, author: MAINTAINER, date: app.now() })
  app.db.transaction(tx => {
    const now = tx.select({ best: campaigns.bestCommit }).from(campaigns).where(eq(campaigns.name, c.name)).get()!
    if (now.best !== c.bestCommit) throw new UserError('the best moved while reverting: look at the new best and try again', 'conflict')
    tx.update(campaigns).set({ bestCommit: commit }).where(eq(campaigns.name, c.name)).run()
    for (const m of chain) tx.update(merges).set({ reverted: true }).where(eq(merges.id, m.id)).run()
    // The revert commit holds exactly the old best's source: its measurements are the new best's
    // (as a merge does with its candidate's), so the ratchet has a parent mean at once.
    for (const m of tx.select().from(measurements).where(and(eq(measurements.campaign, c.name), eq(measurements.commit, target.bestBefore))).all()) {
      const { id: _id, ...rest } = m
      tx.insert(measurements).values({ ...rest, commit }).run()
    }
    logEvent(tx, c.name, 'merge-reverted', { merge: target.id, experiment: target.experimentId, alsoReverted: chain.slice(0, -1).map(m => m.id),
      from: c.bestCommit, commit, restores: target.bestBefore })
  })
  await app.git.setRef(`refs/heads/${c.branch}`, commit)
  app.bus.emit({ type: 'best-changed', campaign: c.name, commit, valBpb: target.valBefore })
  app.bus.emit({ type: 'work-available', campaign: c.name })
  return { commit, reverted: chain.map(m => m.id), valBpb: target.valBefore }
}

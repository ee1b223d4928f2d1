import { z } from 'zod'
import { and, desc, eq, sql } from 'drizzle-orm'
import { publicProcedure, router } from './trpc.ts'
import { contributors, experiments, merges, workUnits, workers } from '../db/schema.ts'
import { getCampaign, listCampaigns } from '../campaigns/campaigns.ts'
import type { Ctx } from '../context.ts'
import { curve, experimentDetail, hypothesisQueue, leaderboard, listExperiments, mergeList, summary, workerBoard } from '../dashboard/queries.ts'
import { toLiveEvent } from '../dashboard/live.ts'
import { dashboardAdminProcedures } from '../dashboard/admin-procedures.ts'

/** One campaign at a glance: what the status page and the dashboard's header show. */
export function overview(app: Ctx, name: string) {
  const c = getCampaign(app, name)
  if (!c) return null
  const counts = app.db.select({ status: experiments.status, n: sql<number>`count(*)` }).from(experiments)
    .where(eq(experiments.campaign, name)).groupBy(experiments.status).all()
  const best = app.db.select().from(experiments).where(and(eq(experiments.campaign, name), eq(experiments.commit, c.bestCommit))).get()
  const baseline = app.db.select().from(experiments).where(and(eq(experiments.campaign, name), eq(experiments.kind, 'baseline')))
    .orderBy(experiments.createdAt).get()
  return {
    name: c.name, branch: c.branch, status: c.status, spec: c.spec, bestCommit: c.bestCommit,
    bestValBpb: best?.valBpb ?? baseline?.valBpb ?? null,
    counts: Object.fromEntries(counts.map(r => [r.status, r.n])) as Record<string, number>,
    merges: app.db.select({ n: sql<number>`count(*)` }).from(merges).where(and(eq(merges.campaign, name), eq(merges.reverted, false))).get()!.n,
  }
}

export function recentExperiments(app: Ctx, campaign: string, limit: number) {
  return app.db.select({
    id: experiments.id, kind: experiments.kind, status: experiments.status, valBpb: experiments.valBpb, description: experiments.description,
    decision: experiments.decision, commit: experiments.commit, parentCommit: experiments.parentCommit, worker: workers.name,
    contributor: contributors.name, hardwareClass: experiments.hardwareClass, createdAt: experiments.createdAt,
  }).from(experiments)
    .leftJoin(workers, eq(workers.id, experiments.workerId)).leftJoin(contributors, eq(contributors.id, experiments.contributorId))
    .where(eq(experiments.campaign, campaign)).orderBy(desc(experiments.createdAt)).limit(limit).all()
}

export function liveWorkers(app: Ctx) {
  const rows = app.db.select({ id: workers.id, name: workers.name, hardwareClass: workers.hardwareClass, lastSeen: workers.lastSeen,
    banned: workers.banned, contributor: contributors.name }).from(workers).leftJoin(contributors, eq(contributors.id, workers.contributorId)).all()
  return rows.map(w => {
    const unit = app.db.select().from(workUnits).where(and(eq(workUnits.workerId, w.id), eq(workUnits.state, 'leased'))).orderBy(desc(workUnits.updatedAt)).get()
    return { ...w, unit: unit ? { id: unit.id, kind: unit.kind, campaign: unit.campaign, progress: unit.progress as { percent: number; step: number; loss: number | null } | null } : null }
  })
}

const Campaign = z.object({ campaign: z.string().max(64) })

export const dashboardRouter = router({
  campaigns: publicProcedure.query(({ ctx }) => listCampaigns(ctx.app).map(c => overview(ctx.app, c.name)!)),
  campaign: publicProcedure.input(z.object({ name: z.string().max(64) })).query(({ ctx, input }) => overview(ctx.app, input.name)),
  summary: publicProcedure.input(Campaign).query(({ ctx, input }) => summary(ctx.app, input.campaign)),
  curve: publicProcedure.input(Campaign).query(({ ctx, input }) => curve(ctx.app, input.campaign)),
  leaderboard: publicProcedure.input(Campaign).query(({ ctx, input }) => leaderboard(ctx.app, input.campaign)),
  experiments: publicProcedure.input(Campaign.extend({
    limit: z.number().int().min(1).max(500).default(50),
    status: z.string().max(32).optional(),
    kind: z.string().max(32).optional(),
    workerId: z.string().max(64).optional(),
    text: z.string().max(200).optional(),
  })).query(({ ctx, input }) => listExperiments(ctx.app, input)),
  experiment: publicProcedure.input(z.object({ id: z.string().max(64) }))
    .query(({ ctx, input }) => ctx.app.db.select().from(experiments).where(eq(experiments.id, input.id)).get() ?? null),
  experimentDetail: publicProcedure.input(z.object({ id: z.string().max(64) })).query(({ ctx, input }) => experimentDetail(ctx.app, input.id)),
  workers: publicProcedure.query(({ ctx }) => liveWorkers(ctx.app)),
  workerBoard: publicProcedure.query(({ ctx }) => workerBoard(ctx.app)),
  hypotheses: publicProcedure.input(Campaign).query(({ ctx, input }) => hypothesisQueue(ctx.app, input.campaign)),
  merges: publicProcedure.input(Campaign).query(({ ctx, input }) => mergeList(ctx.app, input.campaign)),
  /** Whether the caller's token is the admin token: the page shows the maintainer's controls. */
  whoami: publicProcedure.query(({ ctx }) => ({ admin: ctx.principal?.kind === 'admin' })),
  /** Signals for the live page: which section of which campaign changed (see dashboard/live.ts). */
  live: publicProcedure.input(z.object({ campaign: z.string().max(64).nullable().default(null) }))
    .subscription(async function* ({ ctx, input, signal }) {
      for await (const e of ctx.app.bus.stream(signal ?? new AbortController().signal)) {
        const live = toLiveEvent(e, input.campaign)
        if (live) yield live
      }
    }),
  ...dashboardAdminProcedures,
})

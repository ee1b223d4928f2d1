import { z } from 'zod'
import { eq } from 'drizzle-orm'
import { publicProcedure, router } from './trpc.ts'
import { currentProgram, programHistory } from '../campaigns/program.ts'
import { experiments } from '../db/schema.ts'
import { listCampaigns } from '../campaigns/campaigns.ts'
import { curve, experimentDetail, hypothesisQueue, leaderboard, liveWorkers, listExperiments, mergeList, overview, summary, workerBoard } from '../dashboard/queries.ts'
import { liveEvents } from '../dashboard/live.ts'
import { reviewQueue } from '../review/queue.ts'
import { dashboardAdminProcedures } from '../dashboard/admin-procedures.ts'

// The CLI reads these from here.
export { liveWorkers, overview, recentExperiments } from '../dashboard/queries.ts'

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
  /** The campaign's program.md and who changed it when (campaigns/program.ts). */
  program: publicProcedure.input(Campaign).query(async ({ ctx, input }) => ({ current: await currentProgram(ctx.app, input.campaign), history: await programHistory(ctx.app, input.campaign, 20) })),
  merges: publicProcedure.input(Campaign).query(({ ctx, input }) => mergeList(ctx.app, input.campaign)),
  /** Candidates awaiting review, with diff, evidence and the agent's review; the verdicts are admin.review. */
  reviews: publicProcedure.input(Campaign).query(({ ctx, input }) => reviewQueue(ctx.app, input.campaign)),
  /** Whether the caller's token is the admin token: the page shows the maintainer's controls. */
  whoami: publicProcedure.query(({ ctx }) => ({ admin: ctx.principal?.kind === 'admin' })),
  /** Signals for the live page: which section of which campaign changed (see dashboard/live.ts). */
  live: publicProcedure.input(z.object({ campaign: z.string().max(64).nullable().default(null) }))
    .subscription(({ ctx, input, signal }) => liveEvents(ctx.app.bus, input.campaign, signal ?? new AbortController().signal)),
  ...dashboardAdminProcedures,
})

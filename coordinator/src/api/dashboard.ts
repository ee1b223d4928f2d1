import { z } from 'zod'
import { eq } from 'drizzle-orm'
import { publicProcedure, router } from './trpc.ts'
import { currentProgram, programHistory } from '../campaigns/program.ts'
import { experiments } from '../db/schema.ts'
import { getCampaign, listCampaigns } from '../campaigns/campaigns.ts'
import { listClasses } from '../classes/approval.ts'
import { contributorMonitor } from '../dashboard/monitor.ts'
import type { Principal } from '../auth/access.ts'
import { curve, experimentDetail, hypothesisQueue, leaderboard, liveWorkers, listExperiments, mergeList, overview, summary, workerBoard } from '../dashboard/queries.ts'
import { liveEvents } from '../dashboard/live.ts'
import { reviewQueue } from '../review/queue.ts'

// The CLI reads these from here.
export { liveWorkers, overview, recentExperiments } from '../dashboard/queries.ts'

const Campaign = z.object({ campaign: z.string().max(64) })

/**
 * Log tails are the author's and the maintainer's only (issue 15: they were world-readable, and a
 * log may print a secret the redaction missed). Everyone else gets the experiment without it.
 */
function withLogFor<T extends { logTail: string; contributorId: string }>(principal: Principal | null, e: T): T & { logTailHidden: boolean } {
  const mayRead = principal?.kind === 'admin' || (principal?.kind === 'worker' && principal.contributorId === e.contributorId)
  return { ...e, logTail: mayRead ? e.logTail : '', logTailHidden: !mayRead }
}

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
  experiment: publicProcedure.input(z.object({ id: z.string().max(64) })).query(({ ctx, input }) => {
    const e = ctx.app.db.select().from(experiments).where(eq(experiments.id, input.id)).get()
    return e ? withLogFor(ctx.principal, e) : null
  }),
  experimentDetail: publicProcedure.input(z.object({ id: z.string().max(64) })).query(async ({ ctx, input }) => {
    const e = await experimentDetail(ctx.app, input.id)
    return e ? withLogFor(ctx.principal, e) : null
  }),
  /** Hardware classes of a campaign: approved or not, and whether they can verify (classes/approval.ts). */
  classes: publicProcedure.input(Campaign).query(({ ctx, input }) => {
    const c = getCampaign(ctx.app, input.campaign)
    return c ? listClasses(ctx.app, c) : []
  }),
  /** Each contributor's runs against other contributors' runs of the same commits (dashboard/monitor.ts). */
  contributorMonitor: publicProcedure.input(Campaign).query(({ ctx, input }) => contributorMonitor(ctx.app, input.campaign)),
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
})

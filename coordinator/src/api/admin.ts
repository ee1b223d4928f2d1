import { z } from 'zod'
import { eq } from 'drizzle-orm'
import { CampaignName, ReviewMode } from '@autoresearch-grid/shared'
import { adminProcedure, router } from './trpc.ts'
import { setCampaignStatus } from '../campaigns/campaigns.ts'
import { setCampaignReview } from '../review/mode.ts'
import { maintainerVerdict } from '../review/verdicts.ts'
import { MERGE_STEPS } from '../units/merge.ts'
import { addHypothesis } from '../hypotheses/add.ts'
import { accessChanged, createWorkerToken, revokeContributorTokens } from '../auth/access.ts'
import { workers } from '../db/schema.ts'
import { DisplayName, LIMITS } from '@autoresearch-grid/shared'
import { setProgram } from '../campaigns/program.ts'
import { approveClass, clearSuspect, setClassSelfVerification } from '../classes/admin.ts'
import { redecidePending } from '../units/redecide.ts'
import { revertMerge } from '../campaigns/revert.ts'
import { updateHypothesis } from '../hypotheses/prioritize.ts'

const ClassRef = z.object({ campaign: CampaignName, hardwareClass: z.string().min(1).max(64) })

export const adminRouter = router({
  pause: adminProcedure.input(z.object({ campaign: CampaignName })).mutation(({ ctx, input }) => setCampaignStatus(ctx.app, input.campaign, 'paused')),
  resume: adminProcedure.input(z.object({ campaign: CampaignName })).mutation(({ ctx, input }) => setCampaignStatus(ctx.app, input.campaign, 'active')),
  addHypothesis: adminProcedure.input(z.object({ campaign: CampaignName, title: z.string().max(200), body: z.string().max(4000).default(''), priority: z.number().int().min(-100).max(100).default(0) }))
    .mutation(({ ctx, input }) => addHypothesis(ctx.app, input.campaign, { ...input, source: 'maintainer', author: 'maintainer' })),
  createToken: adminProcedure.input(z.object({ contributor: DisplayName })).mutation(({ ctx, input }) => createWorkerToken(ctx.app, input.contributor)),
  revokeTokens: adminProcedure.input(z.object({ contributor: DisplayName })).mutation(({ ctx, input }) => ({ revoked: revokeContributorTokens(ctx.app, input.contributor) })),
  /** The maintainer edits a campaign's program.md (dashboard admin panel); the next units carry it. */
  setProgram: adminProcedure.input(z.object({ campaign: CampaignName, text: z.string().max(LIMITS.programChars), message: z.string().max(200).default('program.md edited in the dashboard'),
    author: DisplayName.default('maintainer') }))
    .mutation(({ ctx, input }) => setProgram(ctx.app, input.campaign, input.text, { name: input.author, email: 'maintainer@autoresearch-grid.local' }, input.message)),
  banWorker: adminProcedure.input(z.object({ workerId: z.string().max(64), banned: z.boolean().default(true) }))
    .mutation(({ ctx, input }) => {
      // Connections that remembered this worker as allowed read it again (auth/access.ts).
      accessChanged(ctx.app)
      return { changed: ctx.app.db.update(workers).set({ banned: input.banned }).where(eq(workers.id, input.workerId)).run().changes }
    }),
  /** Who reviews a campaign's candidates before they merge (review/policy.ts); the answer says what applies here. */
  setReview: adminProcedure.input(z.object({ campaign: CampaignName, review: ReviewMode }))
    .mutation(({ ctx, input }) => setCampaignReview(ctx.app, input.campaign, input.review)),
  /** The maintainer's verdict on a candidate awaiting review: recorded with the reason, in the merge when it merges. */
  review: adminProcedure.input(z.object({
    experimentId: z.string().max(64),
    verdict: z.enum(['approve', 'reject']),
    reason: z.string().trim().min(3, 'say why: a review needs a reason of a few words').max(2000),
  })).mutation(({ ctx, input }) => maintainerVerdict(ctx.app, input.experimentId, input.verdict, input.reason, MERGE_STEPS)),
  /** A hardware class counts toward merges once approved (classes/approval.ts); its held candidates are judged now. */
  approveClass: adminProcedure.input(ClassRef.extend({ approved: z.boolean().default(true) })).mutation(async ({ ctx, input }) => {
    approveClass(ctx.app, input.campaign, input.hardwareClass, input.approved)
    return { redecided: await redecidePending(ctx.app, input.campaign, input.hardwareClass) }
  }),
  setClassSelfVerification: adminProcedure.input(ClassRef.extend({ allow: z.boolean() })).mutation(async ({ ctx, input }) => {
    setClassSelfVerification(ctx.app, input.campaign, input.hardwareClass, input.allow)
    return { redecided: await redecidePending(ctx.app, input.campaign, input.hardwareClass) }
  }),
  clearSuspect: adminProcedure.input(z.object({ contributorId: z.string().max(64) })).mutation(({ ctx, input }) => clearSuspect(ctx.app, input.contributorId)),
  /** Takes a merge back (and those made on top of it) with a new commit on the branch (campaigns/revert.ts). */
  revertMerge: adminProcedure.input(z.object({ mergeId: z.string().max(64) })).mutation(({ ctx, input }) => revertMerge(ctx.app, input.mergeId)),
  /** Reorders the hypothesis queue: a new priority, or an idea dropped or brought back. */
  updateHypothesis: adminProcedure.input(z.object({
    id: z.string().max(64),
    priority: z.number().int().min(-100).max(100).optional(),
    status: z.enum(['open', 'rejected']).optional(),
  })).mutation(({ ctx, input }) => updateHypothesis(ctx.app, input)),
})

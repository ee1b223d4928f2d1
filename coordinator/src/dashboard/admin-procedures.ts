import { z } from 'zod'
import { adminProcedure } from '../api/trpc.ts'
import { revertMerge } from './revert.ts'
import { updateHypothesis } from './prioritize.ts'

/**
 * Maintainer actions the dashboard needs that admin.* did not have yet. They are admin
 * procedures (the admin token is required) mounted under dashboard.* only because the dashboard
 * owns this file; moving them into adminRouter is one spread and two paths in web/app.js.
 */
export const dashboardAdminProcedures = {
  revertMerge: adminProcedure.input(z.object({ mergeId: z.string().max(64) })).mutation(({ ctx, input }) => revertMerge(ctx.app, input.mergeId)),
  updateHypothesis: adminProcedure.input(z.object({
    id: z.string().max(64),
    priority: z.number().int().min(-100).max(100).optional(),
    status: z.enum(['open', 'rejected']).optional(),
  })).mutation(({ ctx, input }) => updateHypothesis(ctx.app, input)),
}

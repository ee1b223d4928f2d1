import { z } from 'zod'
import { SwarmQuery } from '@autoresearch-grid/shared'
import { router, workerProcedure } from './trpc.ts'
import { ownWorker } from '../workers/registry.ts'
import { getCampaign } from '../campaigns/campaigns.ts'
import { UserError } from '../errors.ts'
import { Claim, claimCandidate } from '../swarm/claim.ts'
import { searchExperiments } from '../swarm/read.ts'

/** The swarm's memory for workers' agents: search the campaign's experiments, claim a candidate. */
export const swarmRouter = router({
  search: workerProcedure.input(z.object({ workerId: z.string().max(64), campaign: z.string().max(64), query: SwarmQuery, parent: z.string().max(64).optional() }))
    .query(({ ctx, input }) => {
      ownWorker(ctx.app, ctx.principal.contributorId, input.workerId)
      if (!getCampaign(ctx.app, input.campaign)) throw new UserError(`no campaign "${input.campaign}"`, 'not-found')
      return searchExperiments(ctx.app, input.campaign, input.query, input.parent)
    }),
  claim: workerProcedure.input(Claim).mutation(({ ctx, input }) => claimCandidate(ctx.app, ownWorker(ctx.app, ctx.principal.contributorId, input.workerId), input)),
})

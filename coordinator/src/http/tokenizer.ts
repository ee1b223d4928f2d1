import type { FastifyInstance } from 'fastify'
import { createReadStream } from 'node:fs'
import { join } from 'node:path'
import type { Ctx } from '../context.ts'
import { getCampaign } from '../campaigns/campaigns.ts'
import { UserError } from '../errors.ts'

/** GET /tokenizer/<campaign>: the campaign's pinned tokenizer, so every worker prepares identical data. */
export async function tokenizerPlugin(server: FastifyInstance, opts: { app: Ctx }): Promise<void> {
  const { app } = opts
  server.get<{ Params: { campaign: string } }>('/tokenizer/:campaign', async (req, reply) => {
    const c = getCampaign(app, req.params.campaign)
    if (!c?.tokenizerFile) throw new UserError(`campaign "${req.params.campaign}" has no pinned tokenizer`, 'not-found')
    return reply.type('application/octet-stream').send(createReadStream(join(app.dataDir, c.tokenizerFile)))
  })
}

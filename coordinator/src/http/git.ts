import type { FastifyInstance } from 'fastify'
import { createReadStream } from 'node:fs'
import { readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import type { Ctx } from '../context.ts'
import { getCampaign } from '../campaigns/campaigns.ts'
import { UserError } from '../errors.ts'

/**
 * Read-only `git clone http://HOST:PORT/git/<campaign>` through git's "dumb" HTTP protocol: the
 * client fetches refs and objects as plain files, so the server runs no git process and cannot
 * be pushed to. Each campaign is shown as a repository whose only branch is its own.
 */
export async function gitPlugin(server: FastifyInstance, opts: { app: Ctx }): Promise<void> {
  const { app } = opts
  const objects = join(app.git.dir, 'objects')
  const campaignRef = (name: string) => {
    const c = getCampaign(app, name)
    if (!c) throw new UserError(`no campaign "${name}" on this coordinator`, 'not-found')
    return { ref: `refs/heads/${c.branch}`, commit: c.bestCommit }
  }
  const notFound = () => new UserError('no such object', 'not-found')

  server.get<{ Params: { campaign: string } }>('/git/:campaign/info/refs', async (req, reply) => {
    const r = campaignRef(req.params.campaign)
    return reply.type('text/plain').header('cache-control', 'no-cache').send(`${r.commit}\t${r.ref}\n`)
  })
  server.get<{ Params: { campaign: string } }>('/git/:campaign/HEAD', async (req, reply) => {
    const r = campaignRef(req.params.campaign)
    return reply.type('text/plain').header('cache-control', 'no-cache').send(`ref: ${r.ref}\n`)
  })
  server.get<{ Params: { campaign: string } }>('/git/:campaign/objects/info/packs', async (req, reply) => {
    campaignRef(req.params.campaign)
    const packs = (await readdir(join(objects, 'pack')).catch(() => [] as string[])).filter(f => /^pack-[0-9a-f]{40,64}\.pack$/.test(f))
    return reply.type('text/plain').send(packs.map(p => `P ${p}\n`).join('') + '\n')
  })
  server.get<{ Params: { campaign: string; dir: string; file: string } }>('/git/:campaign/objects/:dir/:file', async (req, reply) => {
    const { dir, file } = req.params
    const valid = (/^[0-9a-f]{2}$/.test(dir) && /^[0-9a-f]{38,62}$/.test(file)) || (dir === 'pack' && /^pack-[0-9a-f]{40,64}\.(pack|idx)$/.test(file))
    campaignRef(req.params.campaign)
    if (!valid) throw notFound()
    const path = join(objects, dir, file)
    if (!(await stat(path).catch(() => null))?.isFile()) throw notFound()
    return reply.type('application/octet-stream').send(createReadStream(path))
  })
}

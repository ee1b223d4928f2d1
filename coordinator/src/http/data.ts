import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import { join } from 'node:path'
import { parseRange } from '@autoresearch-grid/shared'
import type { Ctx } from '../context.ts'
import { authenticate, revokedAmong } from '../auth/access.ts'
import { bearer } from '../auth/tokens.ts'
import { AUTH_LIMITER } from '../auth/rate-limit.ts'
import { servedData } from '../dataset/manifest.ts'
import { UserError } from '../errors.ts'
import { refuse } from './errors.ts'

/**
 * Serves the prepared data sets of campaigns whose data only the coordinator has:
 *   GET /data/<campaign>                 the manifest (DatasetManifest JSON)
 *   GET /data/<campaign>/files/<name>    one file, with HTTP Range for resuming
 * Only to callers with a live worker token (or the admin token): the maintainer's data is not
 * public just because the dashboard is. A refusal counts against the address like a failed login.
 */
export async function dataPlugin(server: FastifyInstance, opts: { app: Ctx }): Promise<void> {
  const { app } = opts
  const allowed = (req: FastifyRequest, reply: FastifyReply): boolean => {
    const limiter = app.state.of(AUTH_LIMITER)
    const wait = limiter.retryAfterMs(req.ip)
    if (wait > 0) {
      void refuse(reply.header('retry-after', String(Math.ceil(wait / 1000))), new UserError('too many failed logins from this address: try again later, with a valid token', 'rate-limited'))
      return false
    }
    const who = authenticate(app, bearer(req.headers.authorization))
    if (who && !revokedAmong(app, [who.tokenId]).length) return true
    limiter.fail(req.ip)
    void refuse(reply, new UserError('a worker token is required (Authorization: Bearer <token>); ask the maintainer for one', 'unauthorized'))
    return false
  }

  server.get<{ Params: { campaign: string } }>('/data/:campaign', async (req, reply) => {
    if (!allowed(req, reply)) return reply
    const served = servedData(app, req.params.campaign)
    if (!served) throw new UserError(`campaign "${req.params.campaign}" serves no data set: its workers prepare their data themselves`, 'not-found')
    return reply.header('cache-control', 'no-cache').send(served.manifest)
  })

  server.get<{ Params: { campaign: string; name: string } }>('/data/:campaign/files/:name', async (req, reply) => {
    if (!allowed(req, reply)) return reply
    const served = servedData(app, req.params.campaign)
    const file = served?.manifest.files.find(f => f.name === req.params.name)
    if (!served || !file) throw new UserError(`no file "${req.params.name}" in the data set of "${req.params.campaign}"`, 'not-found')
    const path = join(served.dir, file.name)
    const size = await stat(path).then(s => s.size, () => -1)
    // The folder changed under the coordinator since the campaign was made: say so, do not serve
    // bytes that cannot match the manifest.
    if (size !== file.size) throw new UserError(`the coordinator's copy of ${file.name} changed since the campaign was created (${size} bytes, expected ${file.size}); the maintainer must recreate the campaign`, 'damaged')
    const range = parseRange(req.headers.range, size)
    reply.header('accept-ranges', 'bytes').header('etag', `"${file.sha256}"`).type('application/octet-stream')
    if (range === 'unsatisfiable') return reply.code(416).header('content-range', `bytes */${size}`).send()
    if (!range) return reply.header('content-length', String(size)).send(createReadStream(path))
    return reply.code(206).header('content-range', `bytes ${range.start}-${range.end}/${size}`).header('content-length', String(range.end - range.start + 1))
      .send(createReadStream(path, { start: range.start, end: range.end }))
  })
}

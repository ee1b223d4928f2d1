import Fastify, { type FastifyInstance } from 'fastify'
import { fastifyTRPCPlugin } from '@trpc/server/adapters/fastify'
import { applyWSSHandler } from '@trpc/server/adapters/ws'
import { WebSocketServer } from 'ws'
import { createReadStream } from 'node:fs'
import { join } from 'node:path'
import { LIMITS } from '@autoresearch-grid/shared'
import type { Ctx } from './context.ts'
import { appRouter } from './api/router.ts'
import { makeContext } from './api/trpc.ts'
import { getCampaign } from './campaigns/campaigns.ts'
import { registerGitHttp } from './git/http.ts'
import { dashboardPlugin } from './dashboard/plugin.ts'

export interface ServerOptions { logger?: boolean | object }

/**
 * One port serves everything: tRPC over HTTP and WebSocket at /trpc, the dashboard at /, and
 * each campaign's tokenizer at /tokenizer/<campaign> so every worker prepares identical data, and
 * a read-only git clone of each campaign at /git/<campaign>.
 */
export async function buildServer(app: Ctx, opts: ServerOptions = {}): Promise<FastifyInstance> {
  const server = Fastify({ logger: opts.logger ?? false, bodyLimit: LIMITS.messageBytes, routerOptions: { maxParamLength: 5000 } })
  await server.register(fastifyTRPCPlugin, {
    prefix: '/trpc',
    trpcOptions: {
      router: appRouter,
      createContext: ({ req }: { req: { headers: Record<string, unknown>; ip: string } }) => makeContext(app, req.headers.authorization, req.ip),
    },
  })

  const wss = new WebSocketServer({ noServer: true, maxPayload: LIMITS.messageBytes })
  const handler = applyWSSHandler({
    wss,
    router: appRouter,
    createContext: ({ req, info }) => makeContext(app, info.connectionParams?.token, req.socket.remoteAddress ?? ''),
    keepAlive: { enabled: true, pingMs: 15_000, pongWaitMs: 10_000 },
  })
  server.server.on('upgrade', (req, socket, head) => {
    if (!req.url?.startsWith('/trpc')) return socket.destroy()
    wss.handleUpgrade(req, socket, head, ws => wss.emit('connection', ws, req))
  })
  server.addHook('onClose', async () => {
    handler.broadcastReconnectNotification()
    for (const ws of wss.clients) ws.terminate()
    await new Promise<void>(resolve => wss.close(() => resolve()))
  })

  server.get('/health', async () => ({ ok: true }))
  server.get<{ Params: { campaign: string } }>('/tokenizer/:campaign', async (req, reply) => {
    const c = getCampaign(app, req.params.campaign)
    if (!c?.tokenizerFile) return reply.code(404).send({ error: `campaign "${req.params.campaign}" has no pinned tokenizer` })
    return reply.type('application/octet-stream').send(createReadStream(join(app.dataDir, c.tokenizerFile)))
  })
  registerGitHttp(server, app)
  await server.register(dashboardPlugin, { app })
  return server
}

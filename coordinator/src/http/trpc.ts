import type { FastifyInstance } from 'fastify'
import { fastifyTRPCPlugin } from '@trpc/server/adapters/fastify'
import { applyWSSHandler } from '@trpc/server/adapters/ws'
import { WebSocketServer } from 'ws'
import { KEEPALIVE, LIMITS } from '@autoresearch-grid/shared'
import type { Ctx } from '../context.ts'
import { appRouter } from '../api/router.ts'
import { makeContext, SUBSCRIPTIONS_PER_CONNECTION } from '../api/trpc.ts'
import { TokenSessions } from '../auth/sessions.ts'
import { addressKey } from '../auth/rate-limit.ts'
import { clientAddress, type TrustFunction } from '../auth/trust-proxy.ts'
import { TurnBudget } from './turn-budget.ts'

/**
 * Bounds on what one caller can make the server hold (DESIGN §11): calls in one batched message,
 * WebSockets open at once from one address (a worker needs one; a dashboard tab one), and
 * subscriptions open at once on one connection (a worker's loop holds one feed, a tab one live
 * feed; api/trpc.ts, `subscriptionSlots`), and the time one turn of the event loop spends on
 * WebSocket messages before the rest of the coordinator runs (http/turn-budget.ts).
 */
export const SERVER_LIMITS = { batchCalls: 32, socketsPerAddress: 256, subscriptionsPerSocket: SUBSCRIPTIONS_PER_CONNECTION, revokedSweepMs: 2000, messageMsPerTurn: 20 } as const

/** The tRPC API at /trpc, over HTTP and over WebSocket (the upgrade of the same path). */
export async function trpcPlugin(server: FastifyInstance, opts: { app: Ctx; trust: TrustFunction | null }): Promise<void> {
  const { app, trust } = opts
  await server.register(fastifyTRPCPlugin, {
    prefix: '/trpc',
    trpcOptions: {
      router: appRouter,
      createContext: ({ req }: { req: { headers: Record<string, unknown>; ip: string } }) => makeContext(app, req.headers.authorization, req.ip, 'http'),
      maxBatchSize: SERVER_LIMITS.batchCalls,
    },
  })
  webSockets(server, app, trust)
}

function webSockets(server: FastifyInstance, app: Ctx, trust: TrustFunction | null): void {
  const wss = new WebSocketServer({ noServer: true, maxPayload: LIMITS.messageBytes })
  const sessions = new TokenSessions()
  const handler = applyWSSHandler({
    wss,
    router: appRouter,
    createContext: ({ req, res, info }) => {
      const ctx = makeContext(app, info.connectionParams?.token, clientAddress(req, trust), 'websocket')
      if (ctx.principal) sessions.add(ctx.principal.tokenId, res)
      return ctx
    },
    // A socket is pinged only after this long without a message; a worker's heartbeats already
    // say it is alive, so the quiet time is longer than the longest heartbeat interval. At 15 s,
    // 10,000 workers beating every 40 s drew 667 pings (and pongs) a second.
    keepAlive: { enabled: true, pingMs: KEEPALIVE.idleMs, pongWaitMs: KEEPALIVE.pongWaitMs },
    maxBatchSize: SERVER_LIMITS.batchCalls,
  })
  const sockets = new Map<string, number>()
  const budget = new TurnBudget(SERVER_LIMITS.messageMsPerTurn)
  server.server.on('upgrade', (req, socket, head) => {
    if (!req.url?.startsWith('/trpc')) return socket.destroy()
    const key = addressKey(clientAddress(req, trust))
    if ((sockets.get(key) ?? 0) >= SERVER_LIMITS.socketsPerAddress) {
      socket.end(`HTTP/1.1 429 Too Many Requests\r\nConnection: close\r\nContent-Type: text/plain\r\n\r\nat most ${SERVER_LIMITS.socketsPerAddress} WebSockets per address\n`)
      return
    }
    wss.handleUpgrade(req, socket, head, ws => {
      sockets.set(key, (sockets.get(key) ?? 0) + 1)
      ws.once('close', () => {
        const n = (sockets.get(key) ?? 1) - 1
        if (n > 0) sockets.set(key, n)
        else sockets.delete(key)
      })
      budget.gate(ws)
      wss.emit('connection', ws, req)
    })
  })
  const sweep = setInterval(() => sessions.closeRevoked(app), SERVER_LIMITS.revokedSweepMs)
  sweep.unref()
  // Before the HTTP server closes, not after (onClose): it waits for every connection to end, and
  // an upgraded socket never ends on its own, so `coordinator start` hung on SIGTERM while workers
  // were connected. Clients are told to reconnect, which they do once a coordinator listens again.
  server.addHook('preClose', async () => {
    clearInterval(sweep)
    handler.broadcastReconnectNotification()
    for (const ws of wss.clients) ws.terminate()
    await new Promise<void>(resolve => wss.close(() => resolve()))
  })
}

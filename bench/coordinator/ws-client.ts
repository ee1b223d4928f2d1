/**
 * A tRPC WebSocket client bound to a chosen loopback source address. The bench is not a workspace
 * package of its own: it borrows the coordinator's client libraries (as coordinator/test does).
 * Each contributor's workers connect from their own 127.x.y.z, as real workers come from their own
 * machines; the coordinator limits WebSockets per address, and one address for 10,000 sockets
 * would also run out of ephemeral ports.
 */
import { createRequire } from 'node:module'
import { createTRPCClient, createWSClient, wsLink } from '../../coordinator/node_modules/@trpc/client/dist/index.mjs'
import type WebSocketType from '../../coordinator/node_modules/@types/ws/index.mjs'
import type { AppRouter } from '../../coordinator/src/api/router.ts'
import { workerKeepAlive } from '../../worker/src/client/connect.ts'

const WebSocket = createRequire(new URL('../../coordinator/package.json', import.meta.url))('ws') as typeof WebSocketType

/** 127.1.0.1, 127.1.0.2, …: the loopback address of contributor k (all of 127/8 is loopback on Linux). */
export function loopbackAddress(k: number): string {
  return `127.1.${Math.floor(k / 250)}.${(k % 250) + 1}`
}

/** Keep-alive as the real worker's (worker/src/client/connect.ts), or pings after `pingMs` of quiet. */
export function boundClient(url: string, token: string, localAddress: string, pingMs?: number) {
  class Bound extends WebSocket {
    constructor(address: string, protocols?: string | string[]) {
      super(address, protocols, { localAddress })
    }
  }
  const client = createWSClient({ url: url.replace(/^http/, 'ws') + '/trpc', WebSocket: Bound as never, connectionParams: () => ({ token }), retryDelayMs: () => 1000,
    keepAlive: pingMs ? { ...workerKeepAlive, intervalMs: pingMs } : workerKeepAlive })
  return { api: createTRPCClient<AppRouter>({ links: [wsLink({ client })] }), close: () => client.close() }
}

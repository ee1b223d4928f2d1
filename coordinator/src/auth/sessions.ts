import type { Ctx } from '../context.ts'
import { revokedAmong } from './access.ts'

/** What a session needs of a socket: `ws`'s WebSocket has it. */
export interface SessionSocket {
  close(code?: number, reason?: string): void
  once(event: 'close', listener: () => void): unknown
}

/** Close code a revoked session ends with (4000-4999 are the application's). */
export const REVOKED_CLOSE_CODE = 4003

/**
 * Open WebSocket sessions by the token that opened them. A WebSocket authenticates once, when it
 * opens, and procedures re-check the token on every call; but a subscription already running
 * (a worker's assignment feed) would go on handing out work to a revoked token. `closeRevoked`
 * ends those sessions: the client reconnects, presents the revoked token, and is refused.
 */
export class TokenSessions {
  private readonly byToken = new Map<string, Set<SessionSocket>>()

  add(tokenId: string, socket: SessionSocket): void {
    let set = this.byToken.get(tokenId)
    if (!set) this.byToken.set(tokenId, (set = new Set()))
    set.add(socket)
    socket.once('close', () => {
      set.delete(socket)
      if (!set.size && this.byToken.get(tokenId) === set) this.byToken.delete(tokenId)
    })
  }

  /** Closes the sessions of tokens revoked since they opened; returns how many were closed. */
  closeRevoked(ctx: Pick<Ctx, 'db'>): number {
    let closed = 0
    for (const id of revokedAmong(ctx, [...this.byToken.keys()])) {
      for (const socket of this.byToken.get(id) ?? []) {
        socket.close(REVOKED_CLOSE_CODE, 'token revoked')
        closed++
      }
      this.byToken.delete(id)
    }
    return closed
  }

  get size(): number {
    let n = 0
    for (const set of this.byToken.values()) n += set.size
    return n
  }
}

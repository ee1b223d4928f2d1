import { and, eq, isNotNull, isNull, sql } from 'drizzle-orm'
import type { Ctx } from '../context.ts'
import { newId } from '../context.ts'
import { contributors, tokens } from '../db/schema.ts'
import { logEvent } from '../events/log.ts'
import { prepared } from '../db/prepared.ts'
import { hashToken, newToken } from './tokens.ts'

export type Principal = { kind: 'worker'; contributorId: string; tokenId: string } | { kind: 'admin'; tokenId: string }

/** Creates a worker token for a contributor (created on first use) and returns it; only its hash is kept. */
export function createWorkerToken(ctx: Pick<Ctx, 'db'>, contributorName: string, email?: string): { token: string; contributorId: string } {
  const token = newToken('worker')
  const contributorId = ctx.db.transaction(tx => {
    let c = tx.select().from(contributors).where(eq(contributors.name, contributorName)).get()
    if (!c) {
      c = { id: newId('c'), name: contributorName, email: email ?? null, suspectClearedAt: null, createdAt: Date.now() }
      tx.insert(contributors).values(c).run()
    }
    tx.insert(tokens).values({ id: newId('t'), kind: 'worker', contributorId: c.id, hash: hashToken(token), label: contributorName }).run()
    logEvent(tx, null, 'token-created', { kind: 'worker', contributor: contributorName })
    return c.id
  })
  return { token, contributorId }
}

export function createAdminToken(ctx: Pick<Ctx, 'db'>, label = 'admin'): string {
  const token = newToken('admin')
  ctx.db.insert(tokens).values({ id: newId('t'), kind: 'admin', hash: hashToken(token), label }).run()
  return token
}

// Every WebSocket and every HTTP call authenticates: prepared (db/prepared.ts).
const byHash = prepared(db => db.select().from(tokens).where(and(eq(tokens.hash, sql.placeholder('hash')), isNull(tokens.revokedAt))).prepare())

/** Looks a presented token up by its hash; revoked tokens authenticate nobody. */
export function authenticate(ctx: Pick<Ctx, 'db'>, token: string | null): Principal | null {
  if (!token) return null
  const row = byHash(ctx.db).get({ hash: hashToken(token) })
  if (!row) return null
  if (row.kind === 'admin') return { kind: 'admin', tokenId: row.id }
  return { kind: 'worker', contributorId: row.contributorId!, tokenId: row.id }
}

const revoked = prepared(db => db.select({ id: tokens.id }).from(tokens).where(and(eq(tokens.id, sql.placeholder('id')), isNotNull(tokens.revokedAt))).prepare())

/**
 * Of these token ids, the ones revoked since (a WebSocket authenticates once, when it opens).
 * Asked on every call: a prepared query (db/prepared.ts), one primary-key lookup per id.
 */
export function revokedAmong(ctx: Pick<Ctx, 'db'>, tokenIds: string[]): string[] {
  return tokenIds.filter(id => revoked(ctx.db).get({ id }))
}

export function revokeContributorTokens(ctx: Pick<Ctx, 'db'>, contributorName: string): number {
  const c = ctx.db.select().from(contributors).where(eq(contributors.name, contributorName)).get()
  if (!c) return 0
  return ctx.db.update(tokens).set({ revokedAt: Date.now() }).where(and(eq(tokens.contributorId, c.id), isNull(tokens.revokedAt))).run().changes
}

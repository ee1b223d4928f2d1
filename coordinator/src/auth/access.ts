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

const revoked = prepared(db => ({
  one: db.select({ id: tokens.id }).from(tokens).where(and(eq(tokens.id, sql.placeholder('id')), isNotNull(tokens.revokedAt))).prepare(),
  all: db.select({ id: tokens.id }).from(tokens).where(isNotNull(tokens.revokedAt)).prepare(),
}))

/**
 * Of these token ids, the ones revoked since (a WebSocket authenticates once, when it opens).
 * A few ids: one primary-key lookup each; many (the sweep over every open session, 1,000
 * contributors' tokens every 2 s at 10,000 workers): one read of the revoked tokens, which are few.
 */
export function revokedAmong(ctx: Pick<Ctx, 'db'>, tokenIds: string[]): string[] {
  const q = revoked(ctx.db)
  if (tokenIds.length <= 8) return tokenIds.filter(id => q.one.get({ id }))
  const gone = new Set(q.all.all().map(r => r.id))
  return tokenIds.filter(id => gone.has(id))
}

/**
 * Counters per database that move whenever who may call what changes in this process: any token
 * revoked or worker banned (`accessChanged`), or one worker re-registered with `hello`
 * (`workerChanged`: its row, its hardware class, changed). A connection that checked its token and
 * its worker at the current values need not read them again (api/trpc.ts, api/worker.ts): at
 * 10,000 workers those reads were two queries on every call. A change made by another process (a
 * second `coordinator` against the same data dir) is not seen here; the session sweep
 * (auth/sessions.ts, every 2 s) still closes the sockets of tokens revoked that way.
 */
interface Generations { all: number; last: number; workers: Map<string, number> }
const generations = new WeakMap<object, Generations>()

function generationsOf(ctx: Pick<Ctx, 'db'>): Generations {
  const key = (ctx.db as unknown as { session: object }).session
  let g = generations.get(key)
  if (!g) generations.set(key, (g = { all: 0, last: 0, workers: new Map() }))
  return g
}

/** The access generation: a cached check made at another value must be made again. */
export function accessGeneration(ctx: Pick<Ctx, 'db'>, workerId?: string): string {
  const g = generationsOf(ctx)
  return workerId === undefined ? String(g.all) : `${g.all}.${g.workers.get(workerId) ?? 0}`
}

export function accessChanged(ctx: Pick<Ctx, 'db'>): void {
  generationsOf(ctx).all++
}

export function workerChanged(ctx: Pick<Ctx, 'db'>, workerId: string): void {
  const g = generationsOf(ctx)
  g.workers.set(workerId, ++g.last)
}

export function revokeContributorTokens(ctx: Pick<Ctx, 'db'>, contributorName: string): number {
  const c = ctx.db.select().from(contributors).where(eq(contributors.name, contributorName)).get()
  if (!c) return 0
  const revokedNow = ctx.db.update(tokens).set({ revokedAt: Date.now() }).where(and(eq(tokens.contributorId, c.id), isNull(tokens.revokedAt))).run().changes
  accessChanged(ctx)
  return revokedNow
}

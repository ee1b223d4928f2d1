import { sql } from 'drizzle-orm'
import type { Writer } from '../db/open.ts'
import { events } from '../db/schema.ts'
import { prepared } from '../db/prepared.ts'

/** Appends to the audit log. Call inside the transaction that made the change, so both land or neither. */
export function logEvent(db: Writer, campaign: string | null, type: string, payload: Record<string, unknown>): void {
  append(db).run({ campaign, type, payload })
}

const append = prepared(db => db.insert(events).values({ campaign: sql.placeholder('campaign'), type: sql.placeholder('type'), payload: sql.placeholder('payload') }).prepare())

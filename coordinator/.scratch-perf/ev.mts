import { openDb } from '../src/db/open.ts'
import { logEvent } from '../src/events/log.ts'
import { events } from '../src/db/schema.ts'
import { mkdtempSync } from 'node:fs'
const db = openDb(mkdtempSync('/tmp/ev-') + '/c.db')
logEvent(db, null, 'x', { a: 1 })
db.transaction(tx => logEvent(tx, 'c', 'y', { b: [2] }))
console.log(db.select().from(events).all(), db.$client.prepare('select payload from events').all())

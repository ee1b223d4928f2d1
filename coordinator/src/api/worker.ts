import { z } from 'zod'
import { eq } from 'drizzle-orm'
import { workUnits } from '../db/schema.ts'
import { AssignmentEvent, Fingerprints, FollowUp, Heartbeat, HeldSources, HelloReply, LIMITS, Report, ReportReply, SourceFiles, WorkerHello } from '@autoresearch-grid/shared'
import { router, workerProcedure, type ApiContext } from './trpc.ts'
import { ownWorker, fingerprintProblem, type Worker } from '../workers/registry.ts'
import { heartbeat, hello } from '../units/presence.ts'
import { leasedCount, leaseNextUnit, toWorkUnit } from '../units/assign.ts'
import { sourceOf } from '../units/source-cache.ts'
import { ingestReport } from '../units/report.ts'
import { knownRun } from '../units/reuse.ts'
import { addHypothesis } from '../hypotheses/add.ts'
import { getCampaign } from '../campaigns/campaigns.ts'
import { UserError } from '../errors.ts'
import { proposalRoom } from '../hypotheses/quota.ts'
import type { BusEvent } from '../events/bus.ts'
import { accessGeneration, workerChanged } from '../auth/access.ts'
import { tickBatch } from '../db/tick-batch.ts'
import { KnownSources, withSourceHash } from '../workers/known-sources.ts'
import { step } from '../trace/steps.ts'

/**
 * A full feed (as many units held as its capacity) looks again at least every this many poll
 * intervals (60 s at the default 2 s); a feed with room, every 5 as before. Full feeds woke every
 * 5 too: at 10,000 connected workers, 1,000 wake-ups a second, each a count of the worker's
 * leases, a timer and a promise (docs/PERFORMANCE.md, "Fourth pass"). A lease that runs out does
 * not wake the feed (units/leases.ts says why): its worker gets new work at this timer, or takes
 * the unit back with its next heartbeat.
 */
export const FULL_FEED_POLLS = 30

const WorkerRef = z.object({ workerId: z.string().max(64) })

type WorkerCtx = ApiContext & { principal: { kind: 'worker'; contributorId: string } }

/**
 * `ownWorker`, remembered by the connection until access changes (api/trpc.ts, ConnectionChecks):
 * a ban, a revocation, or a new `hello` of this worker reads it again.
 */
function me(ctx: WorkerCtx, workerId: string): Worker {
  const generation = accessGeneration(ctx.app, workerId)
  const hit = ctx.checked.workers.get(workerId)
  if (hit?.generation === generation) return hit.worker as Worker
  const worker = ownWorker(ctx.app, ctx.principal.contributorId, workerId)
  // One GPU loop per connection is the rule; a connection naming many workers keeps a few.
  if (ctx.checked.workers.size >= 8) ctx.checked.workers.clear()
  ctx.checked.workers.set(workerId, { generation, worker })
  return worker
}

export const workerRouter = router({
  hello: workerProcedure.input(WorkerHello).output(HelloReply).mutation(({ ctx, input }) => {
    const reply = hello(ctx.app, ctx.principal.contributorId, input)
    // Its row (hardware class) may have changed: connections that remembered it read it again.
    workerChanged(ctx.app, reply.workerId)
    return reply
  }),

  /**
   * Answered before its commit is on disk (ProcedureMeta): what a heartbeat writes (last seen,
   * progress, a renewed lease) may be lost to a power cut without harm, since a restarted
   * coordinator extends every lease anyway (units/leases.ts) and the next beat writes it again. At
   * 10,000 workers the heartbeats alone asked for ~50-100 fdatasyncs a second.
   */
  heartbeat: workerProcedure.meta({ acknowledgeBeforeSync: true }).input(Heartbeat).mutation(async ({ ctx, input }) => {
    const worker = me(ctx, input.workerId)
    // Heartbeats of one turn of the event loop share one transaction (db/tick-batch.ts).
    const reply = await tickBatch(ctx.app.db).add(() => heartbeat(ctx.app, worker, input))
    // A unit taken from this worker (a cancelled verification, a lease lost) frees room: its feed
    // looks again now rather than at its slow timer.
    if (reply.cancelled.length) ctx.app.bus.wakeWorker(worker.id)
    return reply
  }),

  report: workerProcedure.input(WorkerRef.extend({ report: Report })).output(ReportReply)
    .mutation(({ ctx, input }) => {
      step(input.workerId, 'report-in')
      return ingestReport(ctx.app, me(ctx, input.workerId), input.report)
    }),

  propose: workerProcedure.input(WorkerRef.extend({ campaign: z.string().max(64), hypotheses: z.array(FollowUp).max(3) }))
    .mutation(({ ctx, input }) => {
      const w = me(ctx, input.workerId)
      const room = proposalRoom(ctx.app, input.campaign, w.contributorId)
      if (room < input.hypotheses.length)
        throw new UserError(`proposal quota: your agents have ${room === 0 ? 'no' : `only ${room}`} hypothesis slot(s) left in "${input.campaign}" (open ones and those of the last hour count); propose again once some were explored`, 'quota')
      return input.hypotheses.map(h => addHypothesis(ctx.app, input.campaign, { ...h, source: 'agent', author: w.name, contributorId: w.contributorId }))
    }),

  /**
   * The worker's feed: work units whenever it has room for one (capacity: how many it holds at
   * once, its pipeline depth; a heartbeat may change it later), and news of a new best. Waits on
   * the coordinator's bus rather than polling the database, with a slow timer as a safety net for
   * room freed without an event. A unit's source is left out when the worker holds it (`sources`).
   */
  assignments: workerProcedure.input(WorkerRef.extend({ capacity: z.number().int().min(1).max(LIMITS.capacity).default(1), fingerprints: Fingerprints.default({}),
    sources: HeldSources.optional() }))
    .subscription(async function* ({ ctx, input, signal }) {
      const app = ctx.app
      const worker = me(ctx, input.workerId)
      const known = input.sources ? new KnownSources(input.sources) : null
      // `dirty`: something happened since the last look (an event may arrive while a yield is
      // suspended, when nobody is asleep to wake). `roomChanged`: something that may change what
      // the feed holds or may take (anything but news of a best, and the slow timer).
      let dirty = false
      let roomChanged = true
      let wake: (() => void) | null = null
      const onAbort = () => wake?.()
      signal?.addEventListener('abort', onAbort)
      // The latest best of each campaign not yet sent: a feed that was busy while the best moved
      // twice needs only where it is now.
      const news = new Map<string, Extract<BusEvent, { type: 'best-changed' }>>()
      // Units taken from this worker while it ran them, to be told at the next turn of the loop.
      const cancels: Extract<BusEvent, { type: 'unit-cancelled' }>[] = []
      // Heartbeats carry the capacity the worker wants now; a client that re-subscribes after a
      // reconnect starts from what it first asked for, until its next heartbeat.
      let capacity = input.capacity
      const feed = app.bus.feed(worker.id, e => {
        if (e.type === 'capacity') {
          if (e.capacity === capacity) return
          capacity = e.capacity
        }
        if (e.type === 'best-changed') news.set(e.campaign, e)
        else roomChanged = true
        if (e.type === 'unit-cancelled') cancels.push(e)
        if (e.type === 'unit-done') step(worker.id, 'woken')
        dirty = true
        wake?.()
      })
      let idle = false
      let held = 0
      try {
        while (!signal?.aborted) {
          dirty = false
          const best = [...news.values()]
          news.clear()
          for (const e of best) yield AssignmentEvent.parse({ type: 'bestChanged', campaign: e.campaign, commit: e.commit, valBpb: e.valBpb })
          // The worker stops the run first (worker/src/loop/held.ts), then hears of its next unit below.
          for (const e of cancels.splice(0)) yield { type: 'cancel', unitId: e.unitId, reason: e.reason } satisfies AssignmentEvent
          // News alone leaves the leases as they were: every feed hears every new best, and at
          // 10,000 connected workers a count of leases per feed was 10,000 queries per merge.
          if (roomChanged) {
            roomChanged = false
            held = leasedCount(app, worker.id)
            while (held < capacity) {
              // Feeds woken by the same event lease in one transaction (db/tick-batch.ts); a feed that
              // ended while it waited for the batch leases nothing.
              step(worker.id, 'lease-asked')
              const unit = await tickBatch(app.db).add(() => signal?.aborted ? null : leaseNextUnit(app, me(ctx, worker.id), c => fingerprintProblem(c, input.fingerprints[c.name]) === null))
              if (!unit) break
              idle = false
              step(worker.id, 'leased')
              const full = await toWorkUnit(app, unit)
              const message = known ? known.strip(full) : withSourceHash(full)
              step(worker.id, 'built')
              // A lease lost to a power cut would make its report unknown: on disk before it is sent.
              await app.db.durable()
              step(worker.id, 'durable')
              yield { type: 'unit', unit: message } satisfies AssignmentEvent
              step(worker.id, 'sent')
              held = leasedCount(app, worker.id)
            }
            // Only a feed with room for work is woken by `work-available` (events/bus.ts).
            feed.hungry = held < capacity
            if (!idle && held === 0) {
              idle = true
              yield { type: 'idle', reason: 'no work for now: every campaign is paused or waiting' } satisfies AssignmentEvent
            }
          }
          if (dirty || signal?.aborted) continue
          // Sleep until something changes, with a slow timer for work that turns up without an
          // event. A full feed can only take work once one of its leases ends: a report, a requeue
          // by its hello, a cancelled unit and a heartbeat told of one wake it (events/bus.ts); an expiry
          // is left to its slow timer (FULL_FEED_POLLS).
          await new Promise<void>(resolve => {
            const timer = setTimeout(() => { roomChanged = true; resolve() }, app.settings.pollMs * (held < capacity ? 5 : FULL_FEED_POLLS))
            wake = () => { clearTimeout(timer); resolve() }
          })
          wake = null
          step(worker.id, 'awake')
        }
      } finally {
        feed.off()
        signal?.removeEventListener('abort', onAbort)
      }
    }),

  /**
   * The source of a unit this worker holds: for a unit that came without it (its feed believed the
   * worker held it, `HeldSources`) when the worker no longer does.
   */
  unitSource: workerProcedure.input(WorkerRef.extend({ unitId: z.string().max(64) })).output(SourceFiles)
    .query(async ({ ctx, input }) => {
      const w = me(ctx, input.workerId)
      const unit = ctx.app.db.select().from(workUnits).where(eq(workUnits.id, input.unitId)).get()
      if (!unit || unit.workerId !== w.id) throw new UserError(`work unit "${input.unitId}" is not leased to this worker`)
      const c = getCampaign(ctx.app, unit.campaign)!
      return sourceOf(ctx.app, unit.kind === 'verify' && unit.targetCommit ? unit.targetCommit : unit.parentCommit, c.spec.editableFiles)
    }),

  /**
   * Whether this exact source was already trained on the worker's class in a campaign: an identical
   * train.py is never trained twice; the worker skips it and the earlier result stands.
   */
  known: workerProcedure.input(WorkerRef.extend({ campaign: z.string().max(64), sourceHash: z.string().regex(/^[0-9a-f]{64}$/) }))
    .query(({ ctx, input }) => {
      const w = me(ctx, input.workerId)
      const e = knownRun(ctx.app, input.campaign, input.sourceHash, w.hardwareClass)
      return e ? { experimentId: e.id, valBpb: e.valBpb, status: e.status, description: e.description } : null
    }),

  campaign: workerProcedure.input(z.object({ name: z.string().max(64) })).query(({ ctx, input }) => {
    const c = getCampaign(ctx.app, input.name)
    return c ? { name: c.name, spec: c.spec, bestCommit: c.bestCommit } : null
  }),
})

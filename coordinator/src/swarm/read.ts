import { and, desc, eq, inArray, isNotNull, like, or, sql, type SQL } from 'drizzle-orm'
import { constantChanges, changedConstant, LIMITS, type SwarmExperiment, type SwarmQuery, type SwarmView, CANDIDATE_KINDS, isCandidate } from '@autoresearch-grid/shared'
import { stateKey, type Ctx } from '../context.ts'
import { experiments, hypotheses, measurements, merges, unitContext, workUnits } from '../db/schema.ts'
import { limitInText, prepared } from '../db/prepared.ts'
import type { Campaign } from '../campaigns/campaigns.ts'
import { buildSwarmView, experimentEntry, type ClaimRow, type ExperimentRow } from './view.ts'

/**
 * Reads what the swarm view and the agents' search need (indexed queries, a bounded number of
 * rows each) and hands it to the pure builder (view.ts). A view is cached for a second per
 * campaign and parent, like the tried-on-parent list (units/assign.ts): it is advice, and the
 * claim (claim.ts) is what stops two agents training the same candidate. A claim or a new best
 * drops the campaign's views at once; a report's experiment makes them stale, and a stale view
 * is still handed out while it is younger than FRESH_AFTER_REPORT_MS.
 */

/**
 * How long a view built before a report may still be handed out. Rebuilding after every report
 * (one view per lease, since every report is followed by its worker's next lease) was ~0.6 ms of a
 * lease's ~1.5 ms in bench/coordinator/ops.ts (docs/PERFORMANCE.md, "Third pass"); at 33 reports
 * a second (10,000 workers, 5-minute budget) this rebuilds a view at most 10 times a second, and
 * a view is never more than 100 ms behind the reports.
 */
export const FRESH_AFTER_REPORT_MS = 100

const p = sql.placeholder
const ROWS = { onParent: 60, recent: 30, inFlight: 40, lineage: 10, open: 12, exhausted: 20 }

const columns = {
  id: experiments.id, unitId: experiments.unitId, parentCommit: experiments.parentCommit, description: experiments.description, status: experiments.status,
  decision: experiments.decision, valBpb: experiments.valBpb, agentNotes: experiments.agentNotes, diff: experiments.diff, sourceHash: experiments.sourceHash,
  hardwareClass: experiments.hardwareClass,
}
/**
 * A view's experiments are read in two parts. What can change — status, decision (units/judge.ts,
 * merge.ts, review/) and the agent of its unit — is read for every view, with the agent joined in.
 * What an experiment is given once, when its report is recorded (description, notes, val_bpb, ...),
 * is read once per experiment and remembered (SWARM_CACHE.fixed); its diff only for the constants
 * it changes (changesOf). Views are rebuilt after reports (FRESH_AFTER_REPORT_MS), and reading ~90 whole rows each
 * time, their log tails and diffs stepped over to reach the notes, plus one agent lookup a row,
 * was half of a lease (docs/PERFORMANCE.md, "Issue 17, part 3").
 */
const changing = { id: experiments.id, status: experiments.status, decision: experiments.decision, agent: unitContext.agent }
const fixedColumns = {
  unitId: experiments.unitId, parentCommit: experiments.parentCommit, description: experiments.description, valBpb: experiments.valBpb,
  agentNotes: experiments.agentNotes, sourceHash: experiments.sourceHash, hardwareClass: experiments.hardwareClass,
}

const q = prepared(db => ({
  onParent: db.select(changing).from(experiments).leftJoin(unitContext, eq(unitContext.unitId, experiments.unitId)).where(and(eq(experiments.campaign, p('campaign')), eq(experiments.parentCommit, p('parent')), inArray(experiments.kind, [...CANDIDATE_KINDS])))
    .orderBy(desc(experiments.createdAt)).limit(limitInText(ROWS.onParent)).prepare(),
  recent: db.select(changing).from(experiments).leftJoin(unitContext, eq(unitContext.unitId, experiments.unitId)).where(and(eq(experiments.campaign, p('campaign')), inArray(experiments.kind, [...CANDIDATE_KINDS])))
    .orderBy(desc(experiments.createdAt)).limit(limitInText(ROWS.recent)).prepare(),
  // Claims whose unit is still out, on any parent of the campaign (the view keeps this parent's).
  inFlight: db.select({ ctx: unitContext }).from(unitContext).innerJoin(workUnits, eq(workUnits.id, unitContext.unitId))
    .where(and(eq(unitContext.campaign, p('campaign')), eq(unitContext.parentCommit, p('parent')), isNotNull(unitContext.claimHash), eq(workUnits.state, 'leased')))
    .limit(limitInText(ROWS.inFlight)).prepare(),
  lineage: db.select({ commit: merges.bestAfter, description: experiments.description, valBpb: merges.valAfter, delta: merges.delta }).from(merges)
    .innerJoin(experiments, eq(experiments.id, merges.experimentId)).where(and(eq(merges.campaign, p('campaign')), eq(merges.reverted, false)))
    .orderBy(desc(merges.createdAt)).limit(limitInText(ROWS.lineage)).prepare(),
  open: db.select({ title: hypotheses.title, priority: hypotheses.priority }).from(hypotheses)
    .where(and(eq(hypotheses.campaign, p('campaign')), inArray(hypotheses.status, ['open', 'in-progress']))).orderBy(desc(hypotheses.priority), hypotheses.createdAt).limit(limitInText(ROWS.open)).prepare(),
  exhausted: db.select({ title: hypotheses.title, status: hypotheses.status }).from(hypotheses)
    .where(and(eq(hypotheses.campaign, p('campaign')), inArray(hypotheses.status, ['tested', 'merged', 'rejected']))).orderBy(desc(hypotheses.createdAt)).limit(limitInText(ROWS.exhausted)).prepare(),
  samples: db.select({ cls: measurements.hardwareClass, v: measurements.valBpb, kind: measurements.kind }).from(measurements)
    .where(and(eq(measurements.campaign, p('campaign')), eq(measurements.commit, p('commit')))).prepare(),
  agentOf: db.select({ agent: unitContext.agent }).from(unitContext).where(eq(unitContext.unitId, p('unit'))).prepare(),
  fixed: db.select(fixedColumns).from(experiments).where(eq(experiments.id, p('id'))).prepare(),
  diffOf: db.select({ diff: experiments.diff }).from(experiments).where(eq(experiments.id, p('id'))).prepare(),
}))

/**
 * What the swarm memory keeps in memory per coordinator (ctx.state): the constants each
 * experiment's diff changes (experiments never change, so computed once each), and the views
 * built for units (a second, or until a report or claim changes what they show).
 */
const SWARM_CACHE = stateKey('swarm memory caches', () => ({
  changes: new Map<string, string[]>(),
  /** What never changes of an experiment, by id (see `changing`). */
  fixed: new Map<string, FixedRow>(),
  views: new Map<string, { at: number; view: SwarmView }>(),
  /** When each campaign last recorded an experiment (Date.now()): views built before are stale. */
  reported: new Map<string, number>(),
  /** Whether new experiments on this coordinator's bus already clear the views. */
  watching: false,
}))

function changesOf(ctx: Pick<Ctx, 'state'>, id: string, diff: string | (() => string)): string[] {
  const cache = ctx.state.of(SWARM_CACHE).changes
  let c = cache.get(id)
  if (!c) {
    c = constantChanges(typeof diff === 'string' ? diff : diff())
    if (cache.size > 5000) cache.clear()
    cache.set(id, c)
  }
  return c
}

type Row = { id: string; unitId: string; parentCommit: string; description: string; status: string; decision: string; valBpb: number | null; agentNotes: string; diff: string; sourceHash: string; hardwareClass: string }
const toRow = (ctx: Pick<Ctx, 'state'>) => (r: Row): ExperimentRow => ({ ...r, changes: changesOf(ctx, r.id, r.diff) })
type FixedRow = Pick<Row, 'unitId' | 'parentCommit' | 'description' | 'valBpb' | 'agentNotes' | 'sourceHash' | 'hardwareClass'>
/** A view's row from what changes (read now) and what does not (read once per experiment). */
function viewRow(ctx: Pick<Ctx, 'state' | 'db'>, r: { id: string; status: string; decision: string }): ExperimentRow {
  const cache = ctx.state.of(SWARM_CACHE).fixed
  let fixed = cache.get(r.id)
  if (!fixed) {
    fixed = q(ctx.db).fixed.get({ id: r.id })!
    if (cache.size > 5000) cache.clear()
    cache.set(r.id, fixed)
  }
  return { id: r.id, ...fixed, status: r.status, decision: r.decision, changes: changesOf(ctx, r.id, () => q(ctx.db).diffOf.get({ id: r.id })?.diff ?? '') }
}

function claimRow(c: typeof unitContext.$inferSelect): ClaimRow {
  return { unitId: c.unitId, parentCommit: c.parentCommit, description: c.claimDescription ?? '', changes: (c.claimChanges as string[] | null) ?? [], sourceHash: c.claimHash ?? '', agent: c.agent }
}

/** Mean val_bpb of a commit per class, from baselines and verifications (claims are not samples). */
function meansOf(ctx: Pick<Ctx, 'db'>, campaign: string) {
  const cache = new Map<string, Map<string, number>>()
  return (commit: string, cls: string): number | null => {
    let byClass = cache.get(commit)
    if (!byClass) {
      const sums = new Map<string, [number, number]>()
      for (const s of q(ctx.db).samples.all({ campaign, commit })) {
        if (isCandidate(s.kind)) continue
        const [sum, n] = sums.get(s.cls) ?? [0, 0]
        sums.set(s.cls, [sum + s.v, n + 1])
      }
      byClass = new Map([...sums].map(([k, [sum, n]]) => [k, sum / n]))
      cache.set(commit, byClass)
    }
    return byClass.get(cls) ?? null
  }
}

/** The swarm view for a unit on `parent` (cached for a second per campaign and parent, or until a report). */
export function swarmViewFor(ctx: Ctx, campaign: Campaign, parent: string): SwarmView {
  const cache = ctx.state.of(SWARM_CACHE)
  if (!cache.watching) {
    cache.watching = true
    ctx.bus.onEvent(e => {
      if (e.type === 'best-changed') forgetViews(ctx, e.campaign)
      else if (e.type === 'experiment') cache.reported.set(e.campaign, Date.now())
    })
  }
  const views = cache.views
  const key = `${campaign.name}\0${parent}`
  const hit = views.get(key)
  const age = hit ? Date.now() - hit.at : 0
  // A view built within FRESH_AFTER_REPORT_MS after a report may have been read before that report's
  // row was committed (writes are batched per tick): only one built later is sure to hold it.
  const settled = hit ? hit.at > (cache.reported.get(campaign.name) ?? Number.NEGATIVE_INFINITY) + FRESH_AFTER_REPORT_MS : false
  if (hit && age < 1000 && (age < FRESH_AFTER_REPORT_MS || settled)) return hit.view
  const db = ctx.db
  const mean = meansOf(ctx, campaign.name)
  // The best's val_bpb: on the class that measured it most.
  const bestSamples = q(db).samples.all({ campaign: campaign.name, commit: campaign.bestCommit }).filter(s => !isCandidate(s.kind))
  const counts = new Map<string, number>()
  for (const s of bestSamples) counts.set(s.cls, (counts.get(s.cls) ?? 0) + 1)
  const topClass = [...counts].sort((a, b) => b[1] - a[1])[0]?.[0]
  // Each row's agent comes with it (a unit has one experiment at most).
  const agents = new Map<string, string | null>()
  const rows = (list: { id: string; status: string; decision: string; agent: string | null }[]) => list.map(r => {
    const row = viewRow(ctx, r)
    agents.set(row.unitId, r.agent)
    return row
  })
  const onParent = rows(q(db).onParent.all({ campaign: campaign.name, parent }))
  const recent = rows(q(db).recent.all({ campaign: campaign.name }))
  const view = buildSwarmView({
    parent,
    best: { commit: campaign.bestCommit, valBpb: topClass ? mean(campaign.bestCommit, topClass) : null },
    lineage: q(db).lineage.all({ campaign: campaign.name }),
    onParent,
    recent,
    inFlight: q(db).inFlight.all({ campaign: campaign.name, parent }).map(r => claimRow(r.ctx)),
    parentMean: mean,
    agentOf: unit => (agents.has(unit) ? agents.get(unit)! : q(db).agentOf.get({ unit })?.agent ?? null),
    open: q(db).open.all({ campaign: campaign.name }),
    exhausted: q(db).exhausted.all({ campaign: campaign.name }),
  })
  if (views.size > 200) views.clear()
  views.set(key, { at: Date.now(), view })
  return view
}

/** Forgets cached views of a campaign (a claim or a report changed what they show). */
export function forgetViews(ctx: Pick<Ctx, 'state'>, campaign: string): void {
  const views = ctx.state.of(SWARM_CACHE).views
  for (const key of views.keys()) if (key.startsWith(`${campaign}\0`)) views.delete(key)
}

/**
 * What one search reads at most: the campaign's newest SEARCH_WINDOW experiments, and the first
 * SEARCH_DIFF_CHARS of each diff. A search that matches nothing reads every row it may, in the
 * event loop: over 2,000 experiments whose diffs a contributor had made 200 KB each (a 256 KiB
 * source of random text), one search for a word nobody wrote held the coordinator for ~0.5 s, and a
 * worker may search as often as it likes (test/hostile/search-cost.test.ts). An agent's edit of
 * train.py is a few KB of diff; what it searches for is recent work.
 */
export const SEARCH_WINDOW = 500
export const SEARCH_DIFF_CHARS = 16 * 1024

const escapeLike = (s: string) => s.replace(/[\\%_]/g, c => `\\${c}`)

/**
 * The Claude agent's search of a campaign's experiments: by words (all of them, in the description,
 * the notes or the diff), by a constant the edit changed, by status, by parent. Newest first,
 * bounded by LIMITS.searchResults; each result as compact as in the view.
 */
export function searchExperiments(ctx: Ctx, campaign: string, query: SwarmQuery, viewerParent?: string): SwarmExperiment[] {
  const where: (SQL | undefined)[] = [eq(experiments.campaign, campaign), inArray(experiments.kind, [...CANDIDATE_KINDS])]
  if (query.status) where.push(eq(experiments.status, query.status as never))
  if (query.parent) where.push(like(experiments.parentCommit, `${query.parent}%`)) // hex only (SwarmQuery)
  // The newest SEARCH_WINDOW experiments, the head of each diff (SEARCH_DIFF_CHARS): see below.
  where.push(sql`${experiments.id} in (select ${experiments.id} from ${experiments} where ${experiments.campaign} = ${campaign} order by ${experiments.createdAt} desc limit ${SEARCH_WINDOW})`)
  const diffHead = sql`substr(${experiments.diff}, 1, ${SEARCH_DIFF_CHARS})`
  for (const word of (query.text ?? '').toLowerCase().split(/\s+/).filter(Boolean).slice(0, 8)) {
    const pat = `%${escapeLike(word)}%`
    where.push(or(sql`lower(${experiments.description}) like ${pat} escape '\\'`, sql`lower(${experiments.agentNotes}) like ${pat} escape '\\'`, sql`lower(${diffHead}) like ${pat} escape '\\'`))
  }
  if (query.constant) where.push(sql`${diffHead} like ${`%${escapeLike(query.constant)}%`} escape '\\'`)
  const limit = Math.min(query.limit ?? 10, LIMITS.searchResults)
  const rows = ctx.db.select(columns).from(experiments).where(and(...where)).orderBy(desc(experiments.createdAt)).limit(limit * 5).all()
  const mean = meansOf(ctx, campaign)
  const agentOf = (unit: string) => q(ctx.db).agentOf.get({ unit })?.agent ?? null
  return rows.map(toRow(ctx))
    .filter(r => !query.constant || r.changes.some(c => changedConstant(c) === query.constant))
    .slice(0, limit)
    .map(r => experimentEntry(r, viewerParent ?? '', mean, agentOf))
}

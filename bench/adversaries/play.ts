/**
 * One adversary scenario on the production code path: a real coordinator (SQLite file, git store,
 * fastify on a loopback port), the default noise policy unless the scenario names one, and real tRPC WebSocket clients — honest
 * researchers and hostile contributors (roles.ts) — that take units from the assignment feed and
 * report like `worker join` does, with the training replaced by the research model (model.ts).
 * Returns what the ratchet did: merges judged against the truth, and what the adversary cost the
 * honest contributors.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createRng, type AssignmentEvent, type ReportInput, type WorkUnit } from '../../shared/src/index.ts'
import { openCoordinator } from '../../coordinator/src/coordinator.ts'
import { buildServer } from '../../coordinator/src/server.ts'
import { createWorkerToken } from '../../coordinator/src/auth/access.ts'
import { createCampaign } from '../../coordinator/src/campaigns/campaigns.ts'
import { boundClient, loopbackAddress } from '../coordinator/ws-client.ts'
import { BUDGET_SECONDS, effectsInDiff, metrics, SEED_TRAIN_PY, SIGMA, trueValBpb, withEffect } from './model.ts'
import { HONEST, type Role } from './roles.ts'
import type { RatchetPolicy } from '../../coordinator/src/ratchet/index.ts'

export interface Scenario {
  name: string
  /** Each entry is one team: a role and its contributors' names (two for a sybil or a pair). */
  teams: { role: Role; names: string[] }[]
  /** Honest researchers (one worker each). */
  honest: number
  /** Reports to collect in all, honest and hostile. */
  units: number
  seed: number
  /** The campaign's noise policy (absent: the campaign spec's default, `parallel` since session 15). */
  policy?: RatchetPolicy
  /** Hostile contributors join once the honest ones reported this many units (the campaign is under way). */
  hostileAfter?: number
  /** Give up after this long whatever happened (liveness, not a measurement). */
  deadlineMs?: number
}

export interface ScenarioResult {
  name: string
  merges: number
  /** Merges whose true effect was not an improvement (≥ 0). */
  falseMerges: number
  /**
   * Of those, the ones an adversary had a hand in: its candidate, its verification among the
   * samples, or its run among the parent's baselines. The rest are the ratchet's honest false accepts.
   */
  falseMergesWithAdversary: number
  /** The ratchet's words for each false merge (diagnosis). */
  falseMergeDecisions: string[]
  /** Merges of candidates by hostile contributors. */
  hostileMerges: number
  /** Merges that were truly better, by honest contributors. */
  honestRealMerges: number
  /** The best's true val_bpb moved by this much (negative: better). */
  trueDrift: number
  /** Units honest workers ran, and how many of them verified hostile candidates. */
  honestUnits: number
  honestVerifyingHostile: number
  hostileUnits: number
  /** Contributors the coordinator made suspects; classes that hold candidates unapproved. */
  suspects: string[]
  heldCandidates: number
  seconds: number
}

interface Client {
  name: string
  contributorId: string
  role: Role
  team: string[]
  api: ReturnType<typeof boundClient>['api']
  close: () => void
  workerId: string
  next: (ms: number) => Promise<WorkUnit | null>
  stop: () => void
  units: number
}

function gaussian(rng: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - rng())) * Math.cos(2 * Math.PI * rng())
}

async function connect(url: string, app: Parameters<typeof createWorkerToken>[0], name: string, index: number, role: Role, team: string[]): Promise<Client> {
  const { token, contributorId } = createWorkerToken(app, name)
  const { api, close } = boundClient(url, token, loopbackAddress(index))
  const { workerId } = await api.worker.hello.mutate({ name: `${name}-gpu0`, hardware: role.hardware, fingerprints: {}, version: 'bench' })
  const queue: WorkUnit[] = []
  let wake: (() => void) | null = null
  const sub = api.worker.assignments.subscribe({ workerId, capacity: 1 }, {
    onData: (e: AssignmentEvent) => { if (e.type === 'unit') { queue.push(e.unit); wake?.() } },
    onError: () => {},
  })
  const next = async (ms: number) => {
    if (!queue.length) await new Promise<void>(r => { wake = r; setTimeout(r, ms) })
    wake = null
    return queue.shift() ?? null
  }
  return { name, contributorId, role, team, api, close, workerId, next, stop: () => sub.unsubscribe(), units: 0 }
}

/** What a client trains and reports for a unit. */
function reportFor(c: Client, unit: WorkUnit, rng: () => number, n: number): ReportInput {
  let source = unit.source['train.py']
  if (unit.kind === 'explore') {
    source = withEffect(source, `${c.name}_${n}`, c.role.editEffect(rng), Math.floor(rng() * 1000)) ?? source
  } else if (unit.kind === 'rebase') {
    // Re-apply the reference diff's idea on the new best, in whatever slot is free.
    for (const [name, effect] of effectsInDiff(unit.referenceDiff ?? '')) source = withEffect(source, `${name}_r${n}`, effect, Math.floor(rng() * 1000)) ?? source
  }
  const teammates = unit.kind === 'verify' && c.team.some(t => t !== c.name && source.includes(`E_${t}_`))
  const v = c.role.reports({ kind: unit.kind, truth: trueValBpb(source), teammates, noise: SIGMA * gaussian(rng), rng })
  return {
    unitId: unit.id, leaseToken: unit.leaseToken, status: v === null ? 'crash' : 'ok', source: { 'train.py': source },
    description: `${unit.kind} by ${c.name}`, diff: '', metrics: v === null ? null : metrics(v), logTail: '', timings: { agentSeconds: 0, runSeconds: BUDGET_SECONDS },
  }
}

export async function runScenario(s: Scenario): Promise<ScenarioResult> {
  const started = Date.now()
  const dir = await mkdtemp(join(tmpdir(), 'arg-adversaries-'))
  const app = await openCoordinator(dir, { pollMs: 200 })
  const server = await buildServer(app)
  const url = await server.listen({ port: 0, host: '127.0.0.1' })
  try {
    await createCampaign(app, { name: 'adv', seed: { 'train.py': SEED_TRAIN_PY }, spec: { budgetSeconds: BUDGET_SECONDS, profile: 'cpu-tiny', noise: { priorSigma: SIGMA, ...(s.policy ? { policy: s.policy } : {}) } } })
    const honest = await Promise.all(Array.from({ length: s.honest }, (_, i) => connect(url, app, `h${i + 1}`, i, HONEST, [`h${i + 1}`])))
    const clients: Client[] = [...honest]
    let reported = 0
    const deadline = started + (s.deadlineMs ?? 10 * 60_000)
    const loop = async (c: Client, seed: number) => {
      const rng = createRng(seed).next
      while (reported < s.units && Date.now() < deadline) {
        const unit = await c.next(1000)
        if (!unit) continue
        c.units++
        reported++
        await c.api.worker.report.mutate({ workerId: c.workerId, report: reportFor(c, unit, rng, c.units) }).catch(() => {})
      }
    }
    const loops = honest.map((c, i) => loop(c, s.seed * 1000 + i))
    const hostileAfter = s.hostileAfter ?? 8
    while (reported < hostileAfter && Date.now() < deadline) await new Promise(r => setTimeout(r, 50))
    let index = s.honest
    for (const team of s.teams) {
      for (const name of team.names) {
        const c = await connect(url, app, name, index++, team.role, team.names)
        clients.push(c)
        loops.push(loop(c, s.seed * 1000 + index))
      }
    }
    await Promise.all(loops)
    for (const c of clients) { c.stop(); c.close() }
    return await tally(s, app, clients, started)
  } finally {
    await server.close()
    await app.close()
    await rm(dir, { recursive: true, force: true })
  }
}

async function tally(s: Scenario, app: Awaited<ReturnType<typeof openCoordinator>>, clients: Client[], started: number): Promise<ScenarioResult> {
  const db = app.db.$client
  const hostile = new Set(clients.filter(c => c.role.hostile).map(c => c.contributorId))
  const merges = db.prepare(`select m.best_before as before, m.best_after as after, e.contributor_id as author, e.decision as decision, m.verifiers as verifiers, e.hardware_class as cls
    from merges m join experiments e on e.id = m.experiment_id where m.campaign = 'adv' order by m.created_at`).all() as { before: string; after: string; author: string; decision: string; verifiers: string; cls: string }[]
  const hostileWorkers = new Set(clients.filter(c => c.role.hostile).map(c => c.workerId))
  const hostileBaseline = (commit: string, cls: string) => (db.prepare(`select count(*) as n from measurements where campaign = 'adv' and "commit" = ? and hardware_class = ?
    and worker_id in (${[...hostileWorkers].map(() => '?').join(',') || "''"})`).get(commit, cls, ...hostileWorkers) as { n: number }).n > 0
  let falseMergesWithAdversary = 0
  const truthOf = async (commit: string) => trueValBpb((await app.git.readFiles(commit, ['train.py']))['train.py'])
  let falseMerges = 0
  let honestRealMerges = 0
  const falseMergeDecisions: string[] = []
  for (const m of merges) {
    const effect = (await truthOf(m.after)) - (await truthOf(m.before))
    if (effect >= 0) falseMerges++
    if (effect >= 0) falseMergeDecisions.push(m.decision)
    if (effect >= 0 && (hostile.has(m.author) || (JSON.parse(m.verifiers ?? '[]') as string[]).some(w => hostileWorkers.has(w)) || hostileBaseline(m.before, m.cls)))
      falseMergesWithAdversary++
    else if (!hostile.has(m.author)) honestRealMerges++
  }
  const best = (db.prepare(`select best_commit as b from campaigns where name = 'adv'`).get() as { b: string }).b
  const seed = (db.prepare(`select best_before as b from merges where campaign = 'adv' order by created_at limit 1`).get() as { b: string } | undefined)?.b ?? best
  const units = db.prepare(`select e.contributor_id as by, e.kind as kind, t.contributor_id as target from experiments e
    left join work_units u on u.id = e.unit_id left join experiments t on t.id = u.target_experiment where e.campaign = 'adv'`).all() as { by: string; kind: string; target: string | null }[]
  const honestUnits = units.filter(u => !hostile.has(u.by))
  const suspects = (await import('../../coordinator/src/units/suspects.ts')).suspectContributors(app.db, 'adv', SIGMA)
  const names = new Map(clients.map(c => [c.contributorId, c.name]))
  return {
    name: s.name,
    merges: merges.length,
    falseMerges,
    falseMergesWithAdversary,
    falseMergeDecisions,
    hostileMerges: merges.filter(m => hostile.has(m.author)).length,
    honestRealMerges,
    trueDrift: (await truthOf(best)) - (await truthOf(seed)),
    honestUnits: honestUnits.length,
    honestVerifyingHostile: honestUnits.filter(u => u.kind === 'verify' && u.target !== null && hostile.has(u.target)).length,
    hostileUnits: units.length - honestUnits.length,
    suspects: suspects.map(id => names.get(id) ?? id),
    heldCandidates: (db.prepare(`select count(*) as n from experiments where campaign = 'adv' and status = 'pending' and decision like 'held:%'`).get() as { n: number }).n,
    seconds: (Date.now() - started) / 1000,
  }
}

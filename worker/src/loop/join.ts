import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { TRPCClientError } from '@trpc/client'
import type { AssignmentEvent, HelloReply, Progress, Report, WorkUnit } from '@autoresearch-grid/shared'
import { ensurePrepared, findPython } from '@autoresearch-grid/trainer'
import { connect, type Api } from '../client/connect.ts'
import { probeHardware } from '../hardware/probe.ts'
import { prepareRunDir } from '../runner/run-dir.ts'
import { runTrainer } from '../runner/trainer.ts'
import { openWorkspace, type Workspace } from '../workspace/git.ts'
import { proposeHeuristic } from '../agent/heuristic.ts'
import { Spool } from './spool.ts'

export const WORKER_VERSION = '0.1.0'

export interface JoinOptions {
  url: string
  token: string
  name: string
  /** Where this worker keeps its workspace, prepared data, runs and undelivered results. */
  stateDir: string
  trainerDir: string
  /** Environment for the trainer, e.g. CUDA_VISIBLE_DEVICES for the GPU this loop owns. */
  env?: Record<string, string>
  seed?: number
  log?: (line: string) => void
  signal?: AbortSignal
}

type Campaign = HelloReply['campaigns'][number]

/** Errors the coordinator answers with (bad request, unauthorized): retrying will not help. */
function isFinal(err: unknown): boolean {
  const code = err instanceof TRPCClientError ? (err.data as { code?: string } | undefined)?.code : undefined
  return code === 'BAD_REQUEST' || code === 'UNAUTHORIZED' || code === 'FORBIDDEN' || code === 'NOT_FOUND'
}

const sleep = (ms: number, signal?: AbortSignal) => new Promise<void>(resolve => {
  const t = setTimeout(resolve, ms)
  signal?.addEventListener('abort', () => { clearTimeout(t); resolve() }, { once: true })
})

/**
 * `worker join`: one GPU loop. Registers with the coordinator, prepares each campaign's data with
 * the coordinator's tokenizer (so its fingerprint matches), then takes units from its feed one at a
 * time: edit (heuristic researcher), train, report. Results are spooled to disk before sending.
 */
export async function joinCoordinator(o: JoinOptions): Promise<void> {
  const log = o.log ?? ((l: string) => console.log(l))
  const python = await findPython()
  const hardware = await probeHardware({ python: python.path, env: { ...process.env, ...o.env } })
  log(`worker ${o.name}: ${hardware.hardwareClass}, torch ${python.torchVersion} (${python.path})`)
  const spool = new Spool(join(o.stateDir, 'spool'))
  const workspace = await openWorkspace(join(o.stateDir, 'workspace'))
  const conn = connect(o.url, o.token, { onClose: () => log('connection lost; reconnecting'), onOpen: () => log(`connected to ${o.url}`) })
  const api = conn.api
  const fingerprints: Record<string, string> = {}
  /** Campaign → the prepared data set folder the trainer reads (AUTORESEARCH_DATA). */
  const prepared = new Map<string, string>()

  const hello = async () => {
    const holding = (await spool.list()).map(s => s.report.unitId)
    return api.worker.hello.mutate({ name: o.name, hardware, fingerprints, version: WORKER_VERSION, holding })
  }
  const prepare = async (c: Campaign) => {
    if (prepared.has(c.name)) return
    let tokenizerFile: string | undefined
    if (c.tokenizerPath) {
      const res = await fetch(new URL(c.tokenizerPath, conn.httpBase))
      if (!res.ok) throw new Error(`could not download the tokenizer of ${c.name}: HTTP ${res.status}`)
      tokenizerFile = join(o.stateDir, 'tokenizers', `${c.name}.model`)
      await mkdir(join(o.stateDir, 'tokenizers'), { recursive: true })
      await writeFile(tokenizerFile, Buffer.from(await res.arrayBuffer()))
    }
    log(`preparing data for ${c.name} (${c.spec.profile})`)
    const p = await ensurePrepared({ python: python.path, trainerDir: o.trainerDir, cacheDir: cacheDir(c.name), profile: c.spec.profile, tokenizerFile, vocabSize: c.spec.vocabSize })
    fingerprints[c.name] = p.fingerprint
    prepared.set(c.name, p.dataDir)
  }
  const cacheDir = (campaign: string) => join(o.stateDir, 'data', campaign)

  let reply: HelloReply
  try {
    reply = await hello()
  } catch (err) {
    await conn.close()
    throw new Error(`the coordinator refused this worker: ${(err as Error).message}`)
  }
  for (const c of reply.campaigns) await prepare(c)
  reply = await hello()
  const workerId = reply.workerId
  for (const c of reply.campaigns) if (c.refused) log(`not taking work from ${c.name}: ${c.refused}`)

  const deliver = async (item: { workerId: string; report: Report }) => {
    for (let attempt = 0; !o.signal?.aborted; attempt++) {
      try {
        const r = await api.worker.report.mutate({ workerId: item.workerId, report: item.report })
        await spool.remove(item.report.unitId)
        log(`${item.report.unitId}: ${r.decision}${r.duplicate ? ' (already recorded)' : ''}`)
        return
      } catch (err) {
        if (isFinal(err)) {
          await spool.remove(item.report.unitId)
          log(`${item.report.unitId}: the coordinator did not take this result: ${(err as Error).message}`)
          return
        }
        await sleep(Math.min(30_000, 1000 * 2 ** attempt) * (0.5 + Math.random() / 2), o.signal)
      }
    }
  }
  for (const item of await spool.list()) await deliver(item)

  const queue: WorkUnit[] = []
  let wake: (() => void) | null = null
  const current = new Map<string, { unit: WorkUnit; progress: Progress | null; abort: AbortController }>()
  const sub = api.worker.assignments.subscribe({ workerId, capacity: 1, fingerprints }, {
    onData: (e: AssignmentEvent) => {
      if (e.type === 'unit') {
        if (!queue.some(u => u.id === e.unit.id) && !current.has(e.unit.id)) queue.push(e.unit)
        wake?.()
      } else if (e.type === 'bestChanged') log(`new best on ${e.campaign}: ${e.valBpb?.toFixed(6) ?? '?'} at ${e.commit.slice(0, 10)}`)
      else if (e.type === 'cancel') current.get(e.unitId)?.abort.abort(e.reason)
    },
    onError: err => log(`assignment feed error: ${err.message}`),
  })
  const beat = setInterval(() => {
    const units = [...current.values()].map(c => ({ unitId: c.unit.id, leaseToken: c.unit.leaseToken, progress: c.progress }))
    api.worker.heartbeat.mutate({ workerId, units }).then(r => {
      for (const id of r.cancelled) current.get(id)?.abort.abort('the coordinator cancelled this unit')
    }, () => {})
  }, 5000)

  try {
    while (!o.signal?.aborted) {
      const unit = queue.shift()
      if (!unit) {
        await new Promise<void>(resolve => {
          wake = resolve
          o.signal?.addEventListener('abort', () => resolve(), { once: true })
        })
        wake = null
        continue
      }
      if (!prepared.has(unit.campaign)) {
        reply = await hello()
        const c = reply.campaigns.find(x => x.name === unit.campaign)
        if (c) await prepare(c)
      }
      const slot = { unit, progress: null as Progress | null, abort: new AbortController() }
      current.set(unit.id, slot)
      const stop = () => slot.abort.abort('worker stopping')
      o.signal?.addEventListener('abort', stop, { once: true })
      try {
        const report = await runUnit({ unit, workspace, stateDir: o.stateDir, trainerDir: o.trainerDir, python: python.path, cacheDir: cacheDir(unit.campaign), dataDir: prepared.get(unit.campaign),
          env: o.env, seed: o.seed, signal: slot.abort.signal, log, onProgress: p => { slot.progress = p } })
        if (slot.abort.signal.aborted) {
          log(`${unit.id}: stopped (${String(slot.abort.signal.reason)})`)
          continue
        }
        await spool.put({ workerId, report })
        await deliver({ workerId, report })
      } finally {
        o.signal?.removeEventListener('abort', stop)
        current.delete(unit.id)
      }
    }
  } finally {
    clearInterval(beat)
    sub.unsubscribe()
    await conn.close()
  }
}

interface RunUnit {
  unit: WorkUnit
  workspace: Workspace
  stateDir: string
  trainerDir: string
  python: string
  cacheDir: string
  dataDir?: string
  env?: Record<string, string>
  seed?: number
  signal: AbortSignal
  log: (line: string) => void
  onProgress: (p: Progress) => void
}

/** Edits (for explore units), trains and measures one unit; returns the report to send. */
export async function runUnit(r: RunUnit): Promise<Report> {
  const { unit, log } = r
  const started = Date.now()
  let files = { ...unit.source }
  let description: string
  if (unit.kind === 'explore' || unit.kind === 'rebase') {
    const proposal = proposeHeuristic({ source: unit.source['train.py'], tried: unit.triedOnParent, seed: r.seed ?? Date.now(), hypothesis: unit.hypothesis ?? undefined, profile: unit.profile })
    if (proposal) {
      files = { ...files, 'train.py': proposal.source }
      description = proposal.description
    } else {
      description = 'repeat of the parent: every heuristic mutation was already tried on it'
    }
  } else {
    description = `${unit.kind} of ${unit.parentCommit.slice(0, 10)}`
  }
  const agentSeconds = (Date.now() - started) / 1000
  await r.workspace.startFrom(unit.parentCommit, unit.source, { unitId: unit.id })
  await r.workspace.commitCandidate(files, description)
  const diff = await r.workspace.diff()
  log(`${unit.id} ${unit.kind} on ${unit.campaign}: ${description}`)
  const { runDir } = await prepareRunDir({ runDir: join(r.stateDir, 'run'), files, trainerDir: r.trainerDir })
  let lastShown = -1
  const result = await runTrainer({
    python: r.python, runDir, budgetSeconds: unit.budgetSeconds, profile: unit.profile, cacheDir: r.cacheDir, dataDir: r.dataDir, seed: r.seed,
    extraEnv: r.env, signal: r.signal,
    onProgress: p => {
      r.onProgress(p)
      const decile = Math.floor(p.percent / 25)
      if (decile > lastShown) {
        lastShown = decile
        log(`${unit.id}: step ${p.step} ${p.percent.toFixed(0)}%${p.loss !== null ? ` loss ${p.loss.toFixed(4)}` : ''}`)
      }
    },
  })
  return {
    unitId: unit.id,
    leaseToken: unit.leaseToken,
    status: result.metrics ? 'ok' : 'crash',
    source: files,
    description: description.slice(0, 300),
    diff,
    metrics: result.metrics,
    logTail: result.logTail.slice(-16_000),
    agentNotes: result.error ?? '',
    followUps: [],
    timings: { agentSeconds, runSeconds: result.runSeconds },
  }
}

// A campaign with known numbers, made the way production makes one: real worker clients take the
// units the coordinator hands out and report results. Each train.py has a fixed val_bpb, so every
// baseline or verification of a commit measures the same value and the expected merges, deltas and
// GPU-hours can be written down in advance, whatever units the ratchet asks for on the way.
import type { AssignmentEvent, ReportInput, WorkUnit } from '@autoresearch-grid/shared'
import { CPU, metrics, SEED_TRAIN_PY, type startCoordinator, wsClient } from '../helpers.ts'

export const TRAINING_SECONDS = 10

type Coordinator = Awaited<ReturnType<typeof startCoordinator>>

export interface Worker {
  name: string
  workerId: string
  api: ReturnType<typeof wsClient>['api']
  /** Results this worker reported with metrics (they count for GPU-hours). */
  runs: number
  close(): void
}

/** The val_bpb each train.py "trains to". */
export const VALUE = new Map<string, number>([[SEED_TRAIN_PY, 1.5]])

export async function join(c: Coordinator, contributor: string, name: string): Promise<Worker> {
  const client = wsClient(c.url, c.workerToken(contributor))
  const { workerId } = await client.api.worker.hello.mutate({ name, hardware: CPU, fingerprints: {}, version: 't' })
  return { name, workerId, api: client.api, runs: 0, close: client.close }
}

export function nextUnit(w: Worker): Promise<WorkUnit> {
  return new Promise((resolve, reject) => {
    const sub = w.api.worker.assignments.subscribe({ workerId: w.workerId }, {
      onData: (e: AssignmentEvent) => { if (e.type === 'unit') { sub.unsubscribe(); resolve(e.unit) } },
      onError: reject,
    })
  })
}

export interface Explore { source: string; valBpb: number | null; description: string; agentNotes?: string }

/**
 * Answers whatever the coordinator asks of this worker (baselines, verifications) with the known
 * value of the source, until it hands out an exploration; reports `explore` for that one.
 */
export async function explore(w: Worker, e: Explore) {
  for (;;) {
    const unit = await nextUnit(w)
    if (unit.kind === 'explore' || unit.kind === 'rebase') {
      VALUE.set(e.source, e.valBpb ?? NaN)
      return send(w, unit, e)
    }
    const source = unit.source['train.py']
    const value = VALUE.get(source)
    if (value === undefined) throw new Error(`no known value for a ${unit.kind} unit's source ${JSON.stringify(source)}`)
    await send(w, unit, { source, valBpb: value, description: unit.kind })
  }
}

async function send(w: Worker, unit: WorkUnit, e: Explore) {
  const report: ReportInput = {
    unitId: unit.id, leaseToken: unit.leaseToken, status: e.valBpb === null ? 'crash' : 'ok', source: { 'train.py': e.source },
    description: e.description, diff: '', metrics: e.valBpb === null ? null : metrics(e.valBpb, TRAINING_SECONDS),
    logTail: e.valBpb === null ? 'Traceback: boom' : 'step 20 | 100.0% | loss 2.0', agentNotes: e.agentNotes ?? '', timings: { agentSeconds: 0, runSeconds: 12 },
  }
  const reply = await w.api.worker.report.mutate({ workerId: w.workerId, report })
  if (e.valBpb !== null) w.runs++
  return { unit, ...reply }
}

/**
 * The standard scenario: the seed measures 1.5; alice improves it to 1.4 and then 1.3 (two merges,
 * Δ 0.2 in all); bob tries 1.45 on top of 1.4 (discarded). Single runs are kept (replications 0),
 * so no verification is needed from the other worker.
 */
export async function seedScenario(c: Coordinator) {
  await c.campaign('demo', { replications: 0, baselineRuns: 1, priorSigma: 0.01 })
  const alice = await join(c, 'alice', 'alice-gpu0')
  const bob = await join(c, 'bob', 'bob-box')
  const first = await explore(alice, { source: 'DEPTH = 5\n', valBpb: 1.4, description: 'deeper: 5 layers' })
  const tried = await explore(bob, { source: 'DEPTH = 9\n', valBpb: 1.45, description: 'much deeper: 9 layers' })
  const second = await explore(alice, { source: 'DEPTH = 6\n', valBpb: 1.3, description: 'deeper still: 6 layers' })
  return { alice, bob, first, tried, second, close: () => { alice.close(); bob.close() } }
}

/**
 * A realistic campaign for looking at the dashboard (docs/DASHBOARD.md): a real coordinator, real
 * worker tRPC clients over WebSocket, and a pretend trainer. Whatever unit the coordinator hands
 * out, a worker "trains" it by reading the hyperparameters from the source and answering with a
 * val_bpb from a fixed landscape plus per-class noise, so the ratchet's decisions are its own.
 * The coordinator's clock is wound back so that the runs spread over a few hours, as they would.
 */
import { createTRPCClient, createWSClient, wsLink } from '@trpc/client'
import WebSocket from 'ws'
import { type AssignmentEvent, type Hardware, type Metrics, type ReportInput, type WorkUnit, createRng, isCandidate, type Rng } from '@autoresearch-grid/shared'
import type { AppRouter } from '../src/api/router.ts'
import type { Ctx } from '../src/context.ts'
import { createWorkerToken } from '../src/auth/access.ts'
import { createCampaign } from '../src/campaigns/campaigns.ts'
import { addHypothesis } from '../src/hypotheses/add.ts'

export const DEMO_TRAIN_PY = `"""GPT pretraining for the 5-minute budget (autoresearch's train.py, abridged for the demo)."""
DEPTH = 8
MATRIX_LR = 0.04
EMBEDDING_LR = 0.6
WARMDOWN_RATIO = 0.2
WEIGHT_DECAY = 0.0
WINDOW_PATTERN = "SSSL"
`

/** The pretend trainer's landscape: the optimum is 1.000 at DEPTH 10, warmdown 0.5, … */
function trueValBpb(source: string): number {
  const get = (name: string, fallback: number) => Number(new RegExp(`^${name} = ([-\\d.e]+)`, 'm').exec(source)?.[1] ?? fallback)
  return 1 + 0.004 * (get('DEPTH', 8) - 10) ** 2 + 20 * (get('MATRIX_LR', 0.04) - 0.05) ** 2 + 0.3 * (get('WARMDOWN_RATIO', 0.2) - 0.5) ** 2 +
    0.05 * (get('EMBEDDING_LR', 0.6) - 0.4) ** 2 + 2 * (get('WEIGHT_DECAY', 0) - 0.02) ** 2
}

const CLASSES: Record<string, { offset: number; sigma: number; gpu: string; memoryMb: number }> = {
  'h100-80g': { offset: 0, sigma: 0.004, gpu: 'NVIDIA H100 80GB HBM3', memoryMb: 81559 },
  'rtx4090-24g': { offset: 0.085, sigma: 0.006, gpu: 'NVIDIA GeForce RTX 4090', memoryMb: 24564 },
}

interface Idea { title: string; set: [string, string]; priority?: number; crash?: boolean }

/** The maintainer's queue; workers without a hypothesis nudge one constant at random. */
const IDEAS: Idea[] = [
  { title: 'Longer warmdown: WARMDOWN_RATIO 0.2 → 0.4', set: ['WARMDOWN_RATIO', '0.4'], priority: 5 },
  { title: 'Deeper model: 10 layers instead of 8', set: ['DEPTH', '10'], priority: 4 },
  { title: 'Raise the Muon matrix learning rate to 0.05', set: ['MATRIX_LR', '0.05'], priority: 3 },
  { title: '3x wider MLP with the same depth', set: ['DEPTH', '8'], priority: 3, crash: true },
  { title: 'Lower the embedding learning rate to 0.4', set: ['EMBEDDING_LR', '0.4'], priority: 2 },
  { title: 'Small weight decay (0.02) on matrices', set: ['WEIGHT_DECAY', '0.02'], priority: 1 },
  { title: 'Warmdown over half of the run', set: ['WARMDOWN_RATIO', '0.5'], priority: 1 },
  { title: 'Try 12 layers', set: ['DEPTH', '12'], priority: 0 },
  { title: 'Matrix LR 0.08 with a longer warmup', set: ['MATRIX_LR', '0.08'], priority: 0 },
  { title: 'Sliding-window attention on every layer', set: ['WINDOW_PATTERN', '"SSSS"'], priority: -1 },
]

const FRESH_IDEAS: [string, number][] = [
  ['Untie the embedding and unembedding weights', 6],
  ['Value embeddings on alternate layers', 4],
  ['Cosine instead of linear warmdown', 2],
]

const NUDGES: [string, number[]][] = [['MATRIX_LR', [0.03, 0.045, 0.055, 0.06]], ['EMBEDDING_LR', [0.3, 0.5, 0.8]], ['WARMDOWN_RATIO', [0.3, 0.35, 0.6]], ['DEPTH', [9, 11]]]

function setConstant(source: string, [name, value]: [string, string]): string {
  return source.replace(new RegExp(`^${name} = .*$`, 'm'), `${name} = ${value}`)
}

function lineDiff(before: string, after: string): string {
  const a = before.split('\n')
  const b = after.split('\n')
  const out = ['--- a/train.py', '+++ b/train.py']
  a.forEach((line, i) => {
    if (line !== b[i]) out.push(`@@ -${i + 1} +${i + 1} @@`, `-${line}`, `+${b[i]}`)
  })
  return out.join('\n')
}

function metrics(valBpb: number, depth: number, rng: Rng): Metrics {
  return { val_bpb: valBpb, training_seconds: 300 + rng.uniform(0, 0.4), total_seconds: 325 + rng.uniform(0, 6), peak_vram_mb: 45060.2 + depth * 1200,
    mfu_percent: 39.8 + rng.uniform(-1, 1), total_tokens_M: 499.6, num_steps: 953 + rng.int(10), num_params_M: 50.3 + (depth - 8) * 6.3, depth }
}

function logTail(m: Metrics | null, crash: boolean): string {
  if (crash) return 'step 00012 | 1.3% | loss 7.8312\nTraceback (most recent call last):\n  File "train.py", line 412, in <module>\ntorch.OutOfMemoryError: CUDA out of memory. Tried to allocate 3.00 GiB'
  return `step 00950 | 99.7% | loss 3.1024 | remaining 1s\n---\n` + Object.entries(m!).map(([k, v]) => `${`${k}:`.padEnd(18)}${typeof v === 'number' ? v.toFixed(k === 'val_bpb' ? 6 : 1) : v}`).join('\n')
}

export interface DemoWorker {
  name: string
  contributor: string
  hardwareClass: string
  workerId: string
  api: ReturnType<typeof createTRPCClient<AppRouter>>
  close(): void
}

function hardware(cls: string): Hardware {
  const c = CLASSES[cls]
  return { gpus: [{ name: c.gpu, memoryMb: c.memoryMb }], cpu: { model: 'AMD EPYC 9654', cores: 32, arch: 'x86_64' }, platform: 'linux', torch: '2.8.0', hardwareClass: cls }
}

export async function connectWorker(url: string, token: string, name: string, contributor: string, cls: string): Promise<DemoWorker> {
  const client = createWSClient({ url: url.replace(/^http/, 'ws') + '/trpc', WebSocket: WebSocket as never, connectionParams: () => ({ token }) })
  const api = createTRPCClient<AppRouter>({ links: [wsLink({ client })] })
  const { workerId } = await api.worker.hello.mutate({ name, hardware: hardware(cls), fingerprints: {}, version: 'demo' })
  return { name, contributor, hardwareClass: cls, workerId, api, close: () => client.close() }
}

/** The next unit the coordinator pushes to this worker, or null if none comes within `waitMs`. */
export function nextUnit(w: DemoWorker, waitMs = 1500): Promise<WorkUnit | null> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { sub.unsubscribe(); resolve(null) }, waitMs)
    const sub = w.api.worker.assignments.subscribe({ workerId: w.workerId }, {
      onData: (e: AssignmentEvent) => {
        if (e.type !== 'unit') return
        clearTimeout(timer)
        sub.unsubscribe()
        resolve(e.unit)
      },
      onError: err => { clearTimeout(timer); reject(err) },
    })
  })
}

/** What the pretend trainer (and agent) would report for this unit. */
export function demoReport(unit: WorkUnit, cls: string, rng: Rng): ReportInput {
  const parent = unit.source['train.py']
  let source = parent
  let description = unit.kind === 'baseline' ? 'baseline of the current best' : unit.kind === 'verify' ? 'verification run' : ''
  let crash = false
  if (isCandidate(unit.kind)) {
    const idea = IDEAS.find(i => i.title === unit.hypothesis?.title)
    if (idea) {
      source = setConstant(parent, idea.set)
      crash = !!idea.crash
      description = idea.title
    } else {
      const [name, values] = NUDGES[rng.int(NUDGES.length)]
      const value = values[rng.int(values.length)]
      source = setConstant(parent, [name, String(value)])
      description = `${name} → ${value}`
    }
  }
  const c = CLASSES[cls]
  const depth = Number(/^DEPTH = (\d+)/m.exec(source)?.[1] ?? 8)
  const m = crash ? null : metrics(Number((trueValBpb(source) + c.offset + rng.normal(0, c.sigma)).toFixed(6)), depth, rng)
  return {
    unitId: unit.id, leaseToken: unit.leaseToken, status: crash ? 'crash' : 'ok', source: { 'train.py': source }, description,
    diff: source === parent ? '' : lineDiff(parent, source), metrics: m, logTail: logTail(m, crash),
    agentNotes: unit.kind === 'explore' ? `Changed one constant for "${description}"; everything else as in the parent.` : '',
    followUps: unit.kind === 'explore' && rng.chance(0.15) ? [{ title: `Follow-up: combine "${description}" with a longer warmdown`, body: '' }] : [],
    timings: { agentSeconds: unit.kind === 'explore' ? 20 + rng.int(40) : 0, runSeconds: 326 },
  }
}

export interface DemoOptions {
  campaign?: string
  /** How many results to report in all (baselines and verifications included). */
  reports?: number
  seed?: number
  /** Leave each worker with a unit in training, part-way through, for the live workers section. */
  leaveRunning?: boolean
}

/**
 * Fills a running coordinator (`app` is the context its server uses) with a campaign of three
 * contributors on two hardware classes. The coordinator must be started with a long lease margin
 * (`leaseMarginSeconds` ≥ a day): the demo's clock runs hours behind the lease timer's.
 */
export async function seedDemo(app: Ctx, url: string, opts: DemoOptions = {}) {
  const name = opts.campaign ?? 'climbmix-5min'
  const reports = opts.reports ?? 28
  const rng = createRng(opts.seed ?? 7)
  await createCampaign(app, {
    name, seed: { 'train.py': DEMO_TRAIN_PY },
    spec: { budgetSeconds: 300, profile: 'gpu', noise: { priorSigma: 0.005, minDelta: 0.001, replications: 1, baselineRuns: 2 } },
  })
  for (const idea of IDEAS) addHypothesis(app, name, { title: idea.title, source: 'maintainer', author: 'maintainer', priority: idea.priority ?? 0 })

  const realNow = app.now
  const step = 330_000 / 4
  let clock = Date.now() - (reports + 4) * step
  app.now = () => clock
  const token = (who: string) => createWorkerToken(app, who, `${who}@example.org`).token
  const tokens = { alice: token('alice'), bob: token('bob'), carol: token('carol'), dave: token('dave') }
  const workers = [
    await connectWorker(url, tokens.alice, 'dgx-a/gpu0', 'alice', 'h100-80g'),
    await connectWorker(url, tokens.alice, 'dgx-a/gpu1', 'alice', 'h100-80g'),
    await connectWorker(url, tokens.bob, 'lab-node-3', 'bob', 'h100-80g'),
    await connectWorker(url, tokens.carol, 'gaming-pc', 'carol', 'rtx4090-24g'),
  ]
  // One contributor joined early and went away: an offline worker.
  const gone = await connectWorker(url, tokens.dave, 'old-box', 'dave', 'rtx4090-24g')
  gone.close()

  let done = 0
  for (let round = 0; done < reports && round < reports * 3; round++) {
    for (const w of workers) {
      if (done >= reports) break
      const unit = await nextUnit(w)
      if (!unit) continue
      clock += step * rng.uniform(0.7, 1.3)
      await w.api.worker.report.mutate({ workerId: w.workerId, report: demoReport(unit, w.hardwareClass, rng) })
      done++
    }
  }
  app.now = realNow
  // The maintainer queued a few more ideas since: the queue is not all history.
  for (const [title, priority] of FRESH_IDEAS) addHypothesis(app, name, { title, source: 'maintainer', author: 'maintainer', priority })
  if (opts.leaveRunning ?? true) {
    for (const w of workers) {
      const unit = await nextUnit(w)
      if (!unit) continue
      const percent = rng.uniform(15, 90)
      await w.api.worker.heartbeat.mutate({ workerId: w.workerId, units: [{ unitId: unit.id, leaseToken: unit.leaseToken,
        progress: { step: Math.round(percent * 9.5), percent, loss: 3.1 + (100 - percent) / 60, remainingSeconds: Math.round((100 - percent) * 3) } }] })
    }
  } else {
    for (const w of workers) await w.api.worker.heartbeat.mutate({ workerId: w.workerId, units: [] })
  }
  return { campaign: name, workers, tokens, close: () => { for (const w of workers) w.close() } }
}

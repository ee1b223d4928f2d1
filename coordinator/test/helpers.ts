import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createTRPCClient, createWSClient, httpLink, wsLink } from '@trpc/client'
import WebSocket from 'ws'
import type { AssignmentEvent, Hardware, Metrics, ReportInput, WorkUnit } from '@autoresearch-grid/shared'
import { openCoordinator } from '../src/coordinator.ts'
import { buildServer } from '../src/server.ts'
import { createAdminToken, createWorkerToken } from '../src/auth/access.ts'
import { createCampaign } from '../src/campaigns/campaigns.ts'
import type { AppRouter } from '../src/api/router.ts'
import type { Settings } from '../src/context.ts'

export const SEED_TRAIN_PY = 'DEPTH = 4\n\n# Muon learning rate\n\nMATRIX_LR = 0.02\n\nprint("train")\n'

/** A real coordinator on a loopback port with a fresh data dir; `close` removes everything. */
export async function startCoordinator(settings: Partial<Settings> = {}, dataDir?: string) {
  const dir = dataDir ?? await mkdtemp(join(tmpdir(), 'arg-coord-'))
  const app = await openCoordinator(dir, { pollMs: 200, ...settings })
  const server = await buildServer(app)
  const url = await server.listen({ port: 0, host: '127.0.0.1' })
  return {
    app, server, url, dir,
    adminToken: () => createAdminToken(app),
    workerToken: (name = 'alice') => createWorkerToken(app, name, `${name}@example.org`).token,
    /**
     * A campaign; by default the single-run ratchet (one baseline, no verification) unless `noise`
     * says otherwise, under the `fixed` policy unless `noise.policy` names another: these tests
     * script the fixed rule's steps (a verification, then a verdict). Campaigns made through the
     * CLI (two-workers, campaign-data, `npm start`) get the production default, `parallel`.
     */
    campaign: (name = 'demo', noise: Record<string, unknown> = { replications: 0, baselineRuns: 1 }) =>
      createCampaign(app, { name, seed: { 'train.py': SEED_TRAIN_PY }, spec: { budgetSeconds: 10, profile: 'cpu-tiny', noise: { policy: 'fixed', ...noise } } }),
    stop: async () => { await server.close(); await app.close() },
    close: async () => { await server.close(); await app.close(); if (!dataDir) await rm(dir, { recursive: true, force: true }) },
  }
}

export function wsClient(url: string, token: string | null) {
  const client = createWSClient({ url: url.replace(/^http/, 'ws') + '/trpc', WebSocket: WebSocket as never, connectionParams: () => (token ? { token } : {}), retryDelayMs: () => 100 })
  return { api: createTRPCClient<AppRouter>({ links: [wsLink({ client })] }), close: () => client.close() }
}

export function httpClient(url: string, token: string | null) {
  return createTRPCClient<AppRouter>({ links: [httpLink({ url: url + '/trpc', headers: () => (token ? { authorization: `Bearer ${token}` } : {}) })] })
}

export const CPU: Hardware = { gpus: [], cpu: { model: 'test cpu', cores: 2, arch: 'x86_64' }, platform: 'linux', torch: '1.13.1', hardwareClass: 'cpu-x86_64' }

export function metrics(valBpb: number, trainingSeconds = 10): Metrics {
  return { val_bpb: valBpb, training_seconds: trainingSeconds, total_seconds: trainingSeconds + 3, peak_vram_mb: 0, mfu_percent: 0, total_tokens_M: 0.1, num_steps: 20, num_params_M: 1, depth: 4 }
}

export function report(unit: { id: string; leaseToken: string; source: Record<string, string> }, valBpb: number | null, edit?: string): ReportInput {
  const source = edit ? { 'train.py': edit } : unit.source
  return { unitId: unit.id, leaseToken: unit.leaseToken, status: valBpb === null ? 'crash' : 'ok', source, description: edit ? 'an edit' : 'as given',
    diff: '', metrics: valBpb === null ? null : metrics(valBpb), logTail: 'log', timings: { agentSeconds: 0, runSeconds: 12 } }
}

type Api = ReturnType<typeof wsClient>['api']

/** One subscription per worker; `next()` resolves with the next unit pushed to it. */
function feed(api: Api, workerId: string) {
  const units: WorkUnit[] = []
  let wake: (() => void) | null = null
  const sub = api.worker.assignments.subscribe({ workerId }, {
    onData: (e: AssignmentEvent) => { if (e.type === 'unit') { units.push(e.unit); wake?.() } },
  })
  return {
    next: async (): Promise<WorkUnit> => {
      while (!units.length) await new Promise<void>(r => { wake = r })
      return units.shift()!
    },
    stop: () => sub.unsubscribe(),
  }
}

/** Workers that said hello, each with its own contributor token and assignment feed. */
export async function joinWorkers(c: Awaited<ReturnType<typeof startCoordinator>>, names: string[]) {
  // One after the other, in the order named: joined at once, whichever feed leased first got the
  // first unit (the baseline), and tests that expect the first-named worker to hold it failed now
  // and then on a busy machine.
  const joined = []
  for (const name of names) {
    const { api, close } = wsClient(c.url, c.workerToken(name))
    const { workerId } = await api.worker.hello.mutate({ name, hardware: CPU, fingerprints: {}, version: 't' })
    const f = feed(api, workerId)
    joined.push({ name, api, workerId, next: f.next, stopFeed: f.stop, close: () => { f.stop(); close() } })
  }
  return joined
}

/**
 * One worker that said hello and subscribed to its assignment feed with `capacity`: `units` collects
 * what the feed hands out, `events` everything it sends. `teardown` closes it (tap's `t.teardown`).
 */
export async function subscribedWorker(c: Awaited<ReturnType<typeof startCoordinator>>, teardown: (fn: () => void) => void, capacity = 1) {
  const { api, close } = wsClient(c.url, c.workerToken())
  teardown(close)
  const { workerId } = await api.worker.hello.mutate({ name: 'w', hardware: CPU, fingerprints: {}, version: 't' })
  const units: WorkUnit[] = []
  const events: AssignmentEvent[] = []
  const sub = api.worker.assignments.subscribe({ workerId, capacity }, { onData: e => { events.push(e); if (e.type === 'unit') units.push(e.unit) } })
  teardown(() => sub.unsubscribe())
  return { api, workerId, units, events }
}

// A real coordinator whose campaign asks for review, real workers on its WebSocket, and (where the
// review needs an agent) the real Anthropic SDK pointed at a local Messages-API server.
import type { ReviewMode } from '@autoresearch-grid/shared'
import { createCampaign } from '../../src/campaigns/campaigns.ts'
import type { Settings } from '../../src/context.ts'
import { joinWorkers, report, SEED_TRAIN_PY, startCoordinator } from '../helpers.ts'
import { message, startMessagesServer, toolUse, type Responder, type Step } from '../../../worker/test/fixtures/messages-server.ts'
import { until as poll } from '../../../shared/test/support/until.ts'

export { apiError, message, toolUse, type MessagesRequest } from '../../../worker/test/fixtures/messages-server.ts'

export const MODEL = 'claude-review-test'

/** A change that trains the same model, honestly: what the reviewer should approve. */
export const HONEST = SEED_TRAIN_PY.replace('DEPTH = 4', 'DEPTH = 6')
/** The hostile contributor: nothing learns, and the summary is printed by hand. */
export const CHEAT = SEED_TRAIN_PY.replace('MATRIX_LR = 0.02', 'MATRIX_LR = 0.0') + 'print("---")\nprint("val_bpb:          0.500000")\n'

export function approve(summary = 'an honest depth change; no rule is touched') {
  return message([toolUse('submit_review', { verdict: 'approve', summary, reasons: ['only DEPTH changes'], concerns: [] })])
}

export function reject(summary: string, concerns: { line: number; text: string }[]) {
  return message([toolUse('submit_review', { verdict: 'reject', summary, reasons: ['rule 2: the metric is forged', 'rule 6: no training'],
    concerns: concerns.map(c => ({ file: 'train.py', severity: 'blocking', ...c })) })])
}

/**
 * A coordinator with a campaign "demo" (single runs: a win merges at once, so the review is the
 * only gate) and, when `script` is given, a review agent talking to a local Messages-API server.
 */
export async function reviewSetup(o: { review: ReviewMode; script?: Step[] | Responder; settings?: Partial<Settings> }) {
  const api = o.script ? await startMessagesServer(o.script) : null
  const c = await startCoordinator({
    reviewAgent: api ? { apiKey: 'sk-test', baseURL: api.url, model: MODEL, maxRetries: 0 } : null,
    reviewRetryMs: 50, reviewRetryMaxMs: 200, ...o.settings,
  })
  await createCampaign(c.app, { name: 'demo', seed: { 'train.py': SEED_TRAIN_PY },
    spec: { budgetSeconds: 10, profile: 'cpu-tiny', noise: { policy: 'fixed', replications: 0, baselineRuns: 1 }, review: o.review } })
  const [alice] = await joinWorkers(c, ['alice'])
  /** What the best measures: the seed's 1.5, then each merged exploration's number. */
  let bestBpb = 1.5
  return {
    c, api, alice,
    close: async () => { alice.close(); await c.close(); await api?.close() },
    /** Alice's baseline of the seed (1.5), so explorations can be judged. */
    baseline: async () => {
      const unit = await alice.next()
      if (unit.kind !== 'baseline') throw new Error(`expected a baseline, got ${unit.kind}`)
      return alice.api.worker.report.mutate({ workerId: alice.workerId, report: report(unit, 1.5) })
    },
    /**
     * Alice's next exploration, reported with `source` trained to `valBpb`. A new best is measured
     * by a baseline before it is explored (a claim is never a parent sample): that comes first.
     */
    explore: async (source: string, valBpb: number) => {
      let unit = await alice.next()
      while (unit.kind === 'baseline') {
        await alice.api.worker.report.mutate({ workerId: alice.workerId, report: report(unit, bestBpb) })
        unit = await alice.next()
      }
      if (unit.kind !== 'explore') throw new Error(`expected an exploration, got ${unit.kind}`)
      const r = await alice.api.worker.report.mutate({ workerId: alice.workerId, report: report(unit, valBpb, source) })
      if (/^merged/.test(r.decision)) bestBpb = valBpb
      return r
    },
  }
}

/** Waits until `check` holds, with no deadline of its own (shared/test/support/until.ts). Tests assert what happened, never how fast. */
export function until<T>(check: () => T | null | undefined | false, what: string): Promise<T> {
  return poll(what, check, { everyMs: 50 })
}

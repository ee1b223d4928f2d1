import { and, eq } from 'drizzle-orm'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { defaultTrainerDir } from '@autoresearch-grid/trainer'
import type { Ctx } from '../context.ts'
import { experiments, reviews } from '../db/schema.ts'
import { getCampaign, type Campaign } from '../campaigns/campaigns.ts'
import { UserError } from '../errors.ts'
import { agentOwed } from './policy.ts'
import { ReviewAgent, ReviewAgentError } from './agent.ts'
import { reasonOf, type ReviewInput } from './prompt.ts'
import { verdictsOf, type MergeDecision, type MergeSteps, type ReviewRow } from './rows.ts'
import { recordAgentFailure, recordVerdict, supersedeAll, supersedeMoved } from './verdicts.ts'

type Experiment = typeof experiments.$inferSelect

/** The research program the reviewer reads for context: program.md next to the trainer, as workers read it. */
async function readProgram(): Promise<string | null> {
  return readFile(join(defaultTrainerDir(), '..', 'program.md'), 'utf8').catch(() => null)
}

/** What the agent reviews: the coordinator's own diff and source of the candidate, never the worker's word. */
async function reviewInput(ctx: Ctx, c: Campaign, exp: Experiment, decision: MergeDecision, program: string | null): Promise<ReviewInput> {
  let diff = exp.diff
  try {
    diff = (await ctx.git.diff(exp.parentCommit, exp.commit)) || exp.diff
  } catch {
    // The commit is written before the experiment row: only a damaged store lands here, and the stored diff is git's too.
  }
  const ev = decision.evidence
  return {
    campaign: c.name, program, editableFiles: c.spec.editableFiles, budgetSeconds: c.spec.budgetSeconds,
    description: exp.description, agentNotes: exp.agentNotes, diff, source: await ctx.git.readFiles(exp.commit, c.spec.editableFiles),
    evidence: { candidateMean: ev.candidateMean, parentMean: ev.parentMean, delta: ev.delta, sigma: ev.sigma, nC: ev.nC, nP: ev.nP, verifiers: decision.verifierIds.length },
  }
}

/** Pending reviews that owe the agent's verdict and whose pause after a failure (if any) is over. */
function dueReviews(ctx: Ctx): ReviewRow[] {
  const now = ctx.now()
  return ctx.db.select().from(reviews).where(eq(reviews.state, 'pending')).all()
    .filter(r => agentOwed(r.mode, verdictsOf(r)) && (r.agentNextAt === null || r.agentNextAt <= now))
}

/** One agent review: the verdict is recorded (and acted on); a failure is recorded for a later try. */
async function reviewOne(ctx: Ctx, steps: MergeSteps, agent: ReviewAgent, row: ReviewRow, program: string | null, signal: AbortSignal): Promise<void> {
  const c = getCampaign(ctx, row.campaign)!
  const exp = ctx.db.select().from(experiments).where(eq(experiments.id, row.experimentId)).get()!
  if (exp.parentCommit !== c.bestCommit) return void await supersedeMoved(ctx, c.name, steps)
  let review
  try {
    review = await agent.review(await reviewInput(ctx, c, exp, row.decision as MergeDecision, program), signal)
  } catch (err) {
    if (signal.aborted) return
    const message = err instanceof ReviewAgentError ? err.message : `internal error while reviewing: ${(err as Error).message}`
    return recordAgentFailure(ctx, row.id, agent.model, message)
  }
  try {
    await recordVerdict(ctx, row.id, { reviewer: 'agent', by: agent.model, verdict: review.verdict, reason: reasonOf(review), concerns: review.concerns }, steps)
  } catch (err) {
    // The maintainer decided while the agent was thinking: their verdict stands.
    if (!(err instanceof UserError)) throw err
  }
}

export interface ReviewRunner {
  /** Resolves when the current pass (if any) is over: for tests and shutdown. */
  idle(): Promise<void>
  stop(): void
}

/**
 * Asks the review agent about every pending review that owes its verdict and is due, one at a
 * time (reviews are rare next to reports; one at a time keeps the API bill and the rate limit
 * predictable). Wakes on the bus (a review requested, the best moved) and on a timer (retries
 * after a failure, reviews left pending by a restart, the first pass after start). Without an agent configured it still
 * sweeps superseded reviews; pending ones wait for the maintainer, who may stand in. A decided
 * review carries on through `steps` (units/merge.ts MERGE_STEPS).
 */
export function startReviewRunner(ctx: Ctx, steps: MergeSteps): ReviewRunner {
  const agent = ctx.settings.reviewAgent ? new ReviewAgent(ctx.settings.reviewAgent) : null
  const abort = new AbortController()
  const program = readProgram()
  let pass: Promise<void> = Promise.resolve()
  let running = false
  let again = false

  async function sweep(): Promise<void> {
    await supersedeAll(ctx, steps)
    if (!agent) return
    for (const row of dueReviews(ctx)) {
      if (abort.signal.aborted) return
      const still = ctx.db.select({ id: reviews.id }).from(reviews).where(and(eq(reviews.id, row.id), eq(reviews.state, 'pending'))).get()
      if (still) await reviewOne(ctx, steps, agent, row, await program, abort.signal)
    }
  }

  /** One pass at a time; a wake-up during a pass runs one more pass after it. */
  function wake(): void {
    if (abort.signal.aborted) return
    if (running) {
      again = true
      return
    }
    running = true
    pass = (async () => {
      try {
        do {
          again = false
          await sweep()
        } while (again && !abort.signal.aborted)
      } catch (err) {
        console.error('review runner:', err)
      } finally {
        running = false
      }
    })()
  }

  const off = ctx.bus.onEvent(e => {
    if (e.type === 'review' || e.type === 'best-changed') wake()
  })
  // The first pass comes with the first tick, not at once: openCoordinator has done the recovery
  // part already, and a short CLI command (token create, campaign list) closes before any tick.
  const timer = setInterval(wake, Math.max(100, ctx.settings.pollMs))
  timer.unref()
  return {
    idle: () => pass,
    stop: () => {
      abort.abort()
      clearInterval(timer)
      off()
    },
  }
}

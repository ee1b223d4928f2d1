import { decideNaive, formatResultRow, naiveResultStatus, parseResultsTsv, type Profile, type Report, type ResultStatus, type WorkUnit } from '@autoresearch-grid/shared'
import type { DataPaths } from '../data/campaign-data.ts'
import type { DutyCycle } from '../loop/duty-cycle.ts'
import type { ResultSink, UnitSource } from '../loop/experiment-loop.ts'
import { checkCandidate, prepareExperiment, usageLine, type ExperimentContext, type Prepared } from '../loop/experiment.ts'
import type { LoopStop } from '../loop/stop.ts'
import { mergeText } from '../workspace/merge.ts'
import type { ResearchRepo } from './repo.ts'
import { summarize } from './results.ts'

export interface LocalResearchOptions {
  repo: ResearchRepo
  ctx: ExperimentContext
  duty: DutyCycle
  /** Where the trainer reads the prepared data. */
  data: DataPaths
  /** The tag, as a unit's campaign name. */
  campaign: string
  profile: Profile
  budgetSeconds: number
  /** Experiments to run after the baseline; unbounded when absent. */
  experiments?: number
  /** An improvement must beat the best by more than this to be kept. */
  minDelta: number
  stop: LoopStop<unknown>
  log(line: string): void
}

/** Where the research stands: the best and its source, what was tried since, rows so far. */
interface Standing {
  best: number | null
  commit: string
  source: string
  triedSinceBest: string[]
  count: number
}

/**
 * `worker solo`'s source and sink of units, the local ratchet of plain autoresearch: a baseline
 * first, then explorations of the best. Each experiment is committed on the branch and kept only
 * if its val_bpb beats the best; otherwise the branch goes back. Every row lands in results.tsv.
 */
export class LocalResearch implements UnitSource, ResultSink {
  private issued = 0
  private explored = 0
  /** Experiments (not the baseline) trained, and those kept. */
  done = 0
  kept = 0
  private readonly held = new Set<string>()

  private constructor(private readonly o: LocalResearchOptions, private readonly standing: Standing, private readonly rowsBefore: number) {}

  /** Resumes the research the repository holds (its results.tsv and branch). */
  static async open(o: LocalResearchOptions): Promise<LocalResearch> {
    const rows = parseResultsTsv(await o.repo.results())
    const standing = { ...summarize(rows), commit: await o.repo.head(), source: await o.repo.trainPy(), count: rows.length }
    return new LocalResearch(o, standing, rows.length)
  }

  get best(): number | null {
    return this.standing.best
  }

  async next(): Promise<WorkUnit | null> {
    const baseline = this.standing.best === null && this.issued === 0
    if (!baseline && this.o.experiments !== undefined && this.explored >= this.o.experiments) return null
    const unit = this.unitFor(baseline ? 'baseline' : 'explore')
    this.issued++
    if (!baseline) this.explored++
    this.held.add(unit.id)
    this.o.duty.hold(1)
    return unit
  }

  private unitFor(kind: WorkUnit['kind']): WorkUnit {
    const s = this.standing
    return {
      id: `${this.o.campaign}-${this.rowsBefore + this.issued}`, kind, campaign: this.o.campaign, profile: this.o.profile, budgetSeconds: this.o.budgetSeconds,
      leaseToken: 'solo', leaseExpiresAt: 0, parentCommit: s.commit, source: { 'train.py': s.source }, editableFiles: ['train.py'], hypothesis: null,
      referenceDiff: null, triedOnParent: s.triedSinceBest.slice(-200),
    }
  }

  async ready(): Promise<DataPaths> {
    return this.o.data
  }

  cancelled(): undefined {
    return undefined
  }

  release(unit: WorkUnit): void {
    if (this.held.delete(unit.id)) this.o.duty.hold(-1)
  }

  /** A candidate prepared on a best that has moved since: carried over by a three-way merge, or redone. */
  async beforeTraining(p: Prepared, signal: AbortSignal): Promise<Prepared> {
    const s = this.standing
    if (p.unit.parentCommit === s.commit) return p
    const merged = await mergeText(p.unit.source['train.py'], s.source, p.files['train.py'])
    if (merged !== null) {
      this.o.log(`${p.unit.id}: the best moved while this was prepared; the change merged cleanly onto ${s.commit.slice(0, 7)}`)
      const unit = { ...p.unit, parentCommit: s.commit, source: { 'train.py': s.source } }
      await p.workspace.startFrom(unit.parentCommit, unit.source, { unitId: unit.id })
      await p.workspace.commitCandidate({ 'train.py': merged }, p.description)
      return { ...p, unit, files: { 'train.py': merged }, verdict: await checkCandidate(this.o.ctx, { 'train.py': merged }, unit), notes: [...p.notes, 'merged onto the new best'] }
    }
    this.o.log(`${p.unit.id}: the best moved and the change conflicts with it; preparing again on ${s.commit.slice(0, 7)}`)
    return prepareExperiment(this.o.ctx, { ...p.unit, parentCommit: s.commit, source: { 'train.py': s.source }, triedOnParent: s.triedSinceBest.slice(-200) }, p.workspace, signal)
  }

  async record(p: Prepared, report: Report): Promise<void> {
    const s = this.standing
    const baseline = p.unit.kind === 'baseline'
    const val = report.metrics?.val_bpb ?? null
    // An exploration whose agent changed nothing was not trained (loop/experiment.ts): no result, no crash.
    const unchanged = !baseline && report.status === 'ok' && report.metrics === null
    let status: ResultStatus = unchanged ? 'discard' : report.status === 'ok' ? naiveResultStatus(decideNaive(val, s.best, this.o.minDelta)) : 'crash'
    if (baseline && status === 'crash') {
      throw new Error(`the baseline train.py crashed, so there is nothing to improve on: ${report.agentNotes.split('\n').pop()}\n${report.logTail.split('\n').slice(-15).join('\n')}`)
    }
    if (baseline) status = 'keep'
    const description = baseline ? 'baseline' : `${report.status === 'rejected-unsafe' ? 'refused by the safety policy: ' : unchanged ? 'no change, not trained: ' : ''}${report.description}`
    const commit = baseline ? s.commit : await this.o.repo.commit(report.source['train.py'], `${description}\n\n${val !== null ? `val_bpb: ${val.toFixed(6)}\n` : ''}status: ${status}`)
    if (status === 'keep') {
      this.kept += baseline ? 0 : 1
      Object.assign(s, { best: val, commit, source: report.source['train.py'], triedSinceBest: [] })
    } else {
      if (!baseline) await this.o.repo.discard(commit, s.commit, s.count)
      s.triedSinceBest.push(description)
    }
    s.count++
    await this.o.repo.appendResult(formatResultRow({ commit, valBpb: val, memoryGb: (report.metrics?.peak_vram_mb ?? 0) / 1024, status, description }))
    const d = this.o.duty.seconds()
    this.o.log(`${commit.slice(0, 7)} ${status}${val !== null ? ` val_bpb ${val.toFixed(6)}` : ''} (best ${s.best?.toFixed(6) ?? '-'}): ${description}; GPU duty cycle ${((this.o.duty.ratio() ?? 0) * 100).toFixed(0)}% (${d.training.toFixed(0)}s of ${d.held.toFixed(0)}s)${usageLine(report)}`)
    if (!baseline) this.done++
    if (this.o.experiments !== undefined && this.done >= this.o.experiments) this.o.stop.done()
  }

  /** Anything failing inside the worker ends solo research: the researcher is at the screen to see why. */
  failed(unit: WorkUnit, err: unknown): void {
    if (this.o.stop.signal.aborted) return
    this.o.stop.fail(err)
    this.o.log(`${unit.id}: ${(err as Error).message}`)
  }
}

/**
 * What a GPU run amounted to, computed from the coordinator's records (pure: report.ts reads the
 * files and writes the page). Times are seconds since the epoch unless a name says otherwise.
 */

export interface RunSettings {
  campaign: string
  profile: string
  budget: number
  wall: number
  gpus: number
  workers: number
  sharedGpu: boolean
  baselineRuns: number
  replications: number
  selfVerification: boolean
  start: number
  workersStart: number
  workersStop: number
  end: number
  command: string
}

export interface ExperimentRow {
  id: string
  kind: string
  worker: string
  status: string
  decision: string
  valBpb: number | null
  trainingSeconds: number | null
  /** train.py's own total_seconds: its process start to its summary. */
  totalSeconds: number | null
  /** The worker's wall time for the trainer process (spawn to exit). */
  runSeconds: number | null
  agentSeconds: number | null
  /** When the coordinator recorded the report. */
  reportedAt: number
  description: string
}

export interface DecisionEvent { experiment: string; kind: string; message: string; at: number }
export interface MergeRow { experiment: string; valBefore: number; valAfter: number; delta: number; sigma: number | null; at: number }

export interface Evidence { delta: number; sigma: number; nC?: number; nP?: number; threshold?: number }

/** Δ and σ from a decision message of the ratchet ("… Δ +0.001234 (C … over 2, P … over 3; threshold … at σ …)"). */
export function evidenceOf(message: string): Evidence | null {
  const full = [...message.matchAll(/Δ ([+-]?\d+(?:\.\d+)?) \(C [\d.]+ over (\d+), P [\d.]+ over (\d+); threshold ([\d.]+) at σ ([\d.]+)\)/g)].pop()
  if (full) return { delta: Number(full[1]), nC: Number(full[2]), nP: Number(full[3]), threshold: Number(full[4]), sigma: Number(full[5]) }
  const d = [...message.matchAll(/Δ ([+-]?\d+(?:\.\d+)?)/g)].pop()
  const s = [...message.matchAll(/σ ([\d.]+)/g)].pop()
  return d && s ? { delta: Number(d[1]), sigma: Number(s[1]) } : null
}

const median = (xs: number[]) => {
  if (!xs.length) return NaN
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0)
const mean = (xs: number[]) => (xs.length ? sum(xs) / xs.length : NaN)

export interface Summary {
  windowSeconds: number
  /** GPUs the figures are per: the machine's GPUs, or the worker count on a CPU run. */
  lanes: number
  trained: ExperimentRow[]
  byKind: Record<string, number>
  experimentsPerHourPerLane: number
  dutyCycle: number
  trainerShare: number
  overhead: { perRun: number[]; inTrainer: number[]; wholeRunPerExperiment: number }
  bestOverTime: { at: number; experiment: string; run: number | null; ratchet: number | null; what: string }[]
  decisions: { row: ExperimentRow; steps: string[]; evidence: Evidence | null }[]
}

export function summarize(s: RunSettings, rows: ExperimentRow[], events: DecisionEvent[], merges: MergeRow[]): Summary {
  const windowSeconds = Math.max(1, s.workersStop - s.workersStart)
  const lanes = s.gpus > 0 ? s.gpus : Math.max(1, s.workers)
  const ordered = [...rows].sort((a, b) => a.reportedAt - b.reportedAt)
  const trained = ordered.filter(r => r.trainingSeconds !== null)
  const byKind: Record<string, number> = {}
  for (const r of trained) byKind[r.kind] = (byKind[r.kind] ?? 0) + 1
  const training = sum(trained.map(r => r.trainingSeconds!))
  const inProcess = sum(trained.map(r => r.runSeconds ?? 0))

  // The ratchet's best moves only on merges; the lowest single run is what a naive ratchet would keep.
  const bestOverTime: Summary['bestOverTime'] = []
  let lowest: number | null = null
  // Before the first merge the branch's best is the seed, measured by the baselines.
  let ratchet: number | null = merges.length ? [...merges].sort((a, b) => a.at - b.at)[0].valBefore : null
  const points = [
    ...trained.map(r => ({ at: r.reportedAt, kind: 'run' as const, r })),
    ...merges.map(m => ({ at: m.at, kind: 'merge' as const, m })),
  ].sort((a, b) => a.at - b.at)
  for (const p of points) {
    if (p.kind === 'run' && p.r.valBpb !== null && (lowest === null || p.r.valBpb < lowest)) {
      lowest = p.r.valBpb
      bestOverTime.push({ at: p.at, experiment: p.r.id, run: lowest, ratchet, what: `lowest single run so far (${p.r.kind})` })
    } else if (p.kind === 'merge') {
      ratchet = p.m.valAfter
      bestOverTime.push({ at: p.at, experiment: p.m.experiment, run: lowest, ratchet, what: `merged: ${p.m.valBefore.toFixed(6)} → ${p.m.valAfter.toFixed(6)} (Δ ${signed(p.m.delta)}${p.m.sigma !== null ? `, σ ${p.m.sigma.toFixed(6)}` : ''})` })
    }
  }

  const decisions = ordered.map(row => {
    const mine = events.filter(e => e.experiment === row.id).sort((a, b) => a.at - b.at)
    const merge = merges.find(m => m.experiment === row.id)
    const last = mine.length ? mine[mine.length - 1].message : row.decision
    const evidence = merge ? { delta: merge.delta, sigma: merge.sigma ?? NaN } : evidenceOf(last) ?? evidenceOf(row.decision)
    return { row, steps: mine.map(e => e.kind), evidence }
  })

  return {
    windowSeconds, lanes, trained, byKind,
    experimentsPerHourPerLane: trained.length / (windowSeconds / 3600) / lanes,
    dutyCycle: training / (windowSeconds * lanes),
    trainerShare: inProcess / (windowSeconds * lanes),
    overhead: {
      perRun: trained.filter(r => r.runSeconds !== null).map(r => r.runSeconds! - r.trainingSeconds!),
      inTrainer: trained.filter(r => r.totalSeconds !== null).map(r => r.totalSeconds! - r.trainingSeconds!),
      wholeRunPerExperiment: trained.length ? (windowSeconds * lanes - training) / trained.length : NaN,
    },
    bestOverTime,
    decisions,
  }
}

function signed(x: number): string {
  return (x >= 0 ? '+' : '') + x.toFixed(6)
}
const f = (x: number | null | undefined, digits = 1) => (x === null || x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(digits))
const pct = (x: number) => `${(100 * x).toFixed(0)}%`
const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ')

export interface PageInput {
  settings: RunSettings
  summary: Summary
  machine: string
  /** Runs the workers abandoned when stopped (from their logs), and other observations. */
  notes: string[]
  reproduce: string
}

/** docs/GPU-RUN.md. */
export function renderPage(p: PageInput): string {
  const { settings: s, summary: m } = p
  const mins = (t: number) => ((t - s.workersStart) / 60).toFixed(1)
  const unit = s.gpus > 0 ? 'GPU' : 'CPU worker'
  const shared = s.sharedGpu ? ` **The GPU was shared: ${s.workers} workers on ${s.gpus} GPU(s)**, so per-GPU figures count every worker on it, each run had a share of the GPU, not all of it, and the duty cycle can exceed 100% (two runs training at once).` : ''
  const stats = (xs: number[]) => xs.length ? `mean ${f(mean(xs))} s, median ${f(median(xs))} s, min ${f(Math.min(...xs))} s, max ${f(Math.max(...xs))} s (n = ${xs.length})` : 'no runs'
  const out: string[] = []
  out.push(s.gpus > 0 ? '# A real run on a GPU machine' : '# A run of the GPU-run tooling on CPU (rehearsal)', '')
  out.push(`The whole system from the release bundles (\`pnpm bundle\`): the coordinator from \`dist/coordinator.mjs\`, `
    + `workers from \`dist/worker.mjs\` with the heuristic researcher (no API key), the real trainer, the embedded corpus. `
    + `Made by \`bench/gpu-run/run.sh\` (the run) and \`bench/gpu-run/report.ts\` (this page).`, '')
  out.push('## Machine', '', '```', p.machine.trim(), '```', '')
  out.push('## Command', '', '```', s.command.trim(), '```', '')
  out.push(`Campaign \`${s.campaign}\`, profile \`${s.profile}\`, budget ${s.budget} s per experiment, ${s.workers} worker(s) on ${s.gpus} GPU(s)`
    + `, stopped ${s.wall} s after the script started; ratchet: ${s.baselineRuns} baseline runs per class, `
    + `${s.replications} verification(s) before a merge, self-verification ${s.selfVerification ? 'allowed (one worker per class)' : 'not allowed'}.${shared}`, '')
  out.push('## Throughput', '')
  out.push(`| | |`, `| --- | --- |`)
  out.push(`| workers running (first start to stop) | ${f(m.windowSeconds, 0)} s |`)
  out.push(`| set-up before the workers started (unpack node, campaign create with prepare.py, coordinator start) | ${f(s.workersStart - s.start, 0)} s |`)
  out.push(`| experiments reported with metrics | ${m.trained.length} (${Object.entries(m.byKind).map(([k, n]) => `${n} ${k}`).join(', ') || 'none'}) |`)
  out.push(`| experiments per hour per ${unit} | **${f(m.experimentsPerHourPerLane)}** |`)
  out.push(`| ${unit} duty cycle: Σ training_seconds / (window × ${m.lanes}) | **${pct(m.dutyCycle)}** |`)
  out.push(`| trainer processes running: Σ run seconds / (window × ${m.lanes}) | ${pct(m.trainerShare)} |`)
  out.push('')
  out.push('The window includes each worker preparing the data, the first (cold) torch.compile, and the runs abandoned at the stop, so it is what a contributor\'s GPU actually delivered.', '')
  out.push('## Start-up overhead per experiment', '')
  out.push(`- trainer process wall time − training_seconds (what the worker waited for besides training): ${stats(m.overhead.perRun)}`)
  out.push(`- train.py's own total_seconds − training_seconds (imports, compile, evaluation): ${stats(m.overhead.inTrainer)}`)
  out.push(`- whole run: (window × ${m.lanes} − Σ training_seconds) / experiments = ${f(m.overhead.wholeRunPerExperiment)} s per experiment`, '')
  out.push('## Best val_bpb over time', '')
  out.push('Minutes since the workers started. "lowest run" is the lowest single measurement so far (what a naive ratchet keeps); "ratchet best" is the branch\'s best (mean of its measurements), moved only by merges; before the first merge it is the seed\'s baseline mean.', '')
  out.push('| min | experiment | lowest run | ratchet best | what |', '| --- | --- | --- | --- | --- |')
  for (const b of m.bestOverTime) out.push(`| ${mins(b.at)} | ${b.experiment} | ${f(b.run, 6)} | ${f(b.ratchet, 6)} | ${cell(b.what)} |`)
  if (!m.bestOverTime.length) out.push('| – | – | – | – | no measurements |')
  out.push('')
  out.push('## What the ratchet decided, per experiment', '')
  out.push('| min | experiment | worker | kind | val_bpb | training s | run s | status | decisions | Δ | σ | decision |', '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |')
  for (const d of m.decisions) {
    const r = d.row
    out.push(`| ${mins(r.reportedAt)} | ${r.id} | ${cell(r.worker)} | ${r.kind} | ${f(r.valBpb, 6)} | ${f(r.trainingSeconds)} | ${f(r.runSeconds)} | ${r.status} | ${d.steps.join(' → ') || '–'} | `
      + `${d.evidence ? signed(d.evidence.delta) : '–'} | ${d.evidence && Number.isFinite(d.evidence.sigma) ? d.evidence.sigma.toFixed(6) : '–'} | ${cell(r.decision.slice(0, 160))} |`)
  }
  out.push('')
  if (p.notes.length) out.push('## Notes', '', ...p.notes.map(n => `- ${n}`), '')
  out.push('## Reproduce', '', '```', p.reproduce.trim(), '```', '')
  return out.join('\n')
}

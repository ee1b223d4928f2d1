/**
 * Turns what bench/gpu-run/run.sh left in its OUT folder into docs/GPU-RUN.md:
 *   npx tsx bench/gpu-run/report.ts [OUT_DIR] [--out docs/GPU-RUN.md]
 * Reads coordinator.db (the coordinator's SQLite file, read-only), run.env, machine.txt and
 * logs.tgz (the workers' logs, for the runs they abandoned when stopped). The numbers come from
 * summary.ts; nothing here is typed in by hand.
 */
import { execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, copyFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import type BetterSqlite3 from '../../coordinator/node_modules/@types/better-sqlite3/index.d.ts'
import { renderPage, summarize, type DecisionEvent, type ExperimentRow, type MergeRow, type RunSettings } from './summary.ts'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const Database = createRequire(join(ROOT, 'coordinator/package.json'))('better-sqlite3') as typeof BetterSqlite3

function readEnvFile(file: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const i = line.indexOf('=')
    if (i > 0) out[line.slice(0, i)] = line.slice(i + 1)
  }
  return out
}

function settingsOf(env: Record<string, string>): RunSettings {
  const num = (k: string) => {
    const v = Number(env[k])
    if (env[k] === undefined || !Number.isFinite(v)) throw new Error(`run.env has no number "${k}": was it written by bench/gpu-run/run.sh?`)
    return v
  }
  return {
    campaign: env.campaign, profile: env.profile, budget: num('budget'), wall: num('wall'), gpus: num('gpus'), workers: num('workers'),
    sharedGpu: env.shared_gpu === 'yes', baselineRuns: num('baseline_runs'), replications: num('replications'), selfVerification: env.self_verification === 'yes',
    start: num('start'), workersStart: num('workers_start'), workersStop: num('workers_stop'), end: num('end'), command: env.command ?? '',
  }
}

/** The coordinator's records, from a copy (a WAL beside the file is taken along, and SQLite may want to write to fold it in). */
function readDb(dir: string, campaign: string): { rows: ExperimentRow[]; events: DecisionEvent[]; merges: MergeRow[] } {
  const tmp = mkdtempSync(join(tmpdir(), 'gpu-run-report-'))
  try {
    copyFileSync(join(dir, 'coordinator.db'), join(tmp, 'coordinator.db'))
    if (existsSync(join(dir, 'coordinator.db-wal'))) copyFileSync(join(dir, 'coordinator.db-wal'), join(tmp, 'coordinator.db-wal'))
    const db = new Database(join(tmp, 'coordinator.db'))
    try {
      const json = (s: string | null) => (s ? JSON.parse(s) as Record<string, number> : null)
      const rows = (db.prepare(`SELECT e.id, e.kind, w.name AS worker, e.status, e.decision, e.val_bpb, e.metrics, e.timings, e.created_at, e.description
        FROM experiments e LEFT JOIN workers w ON w.id = e.worker_id WHERE e.campaign = ? ORDER BY e.created_at`).all(campaign) as Record<string, string | number | null>[])
        .map((r): ExperimentRow => {
          const m = json(r.metrics as string | null)
          const t = json(r.timings as string | null)
          return {
            id: String(r.id), kind: String(r.kind), worker: String(r.worker ?? '?'), status: String(r.status), decision: String(r.decision ?? ''),
            valBpb: r.val_bpb === null ? null : Number(r.val_bpb), trainingSeconds: m?.training_seconds ?? null, totalSeconds: m?.total_seconds ?? null,
            runSeconds: t?.runSeconds ?? null, agentSeconds: t?.agentSeconds ?? null, reportedAt: Number(r.created_at) / 1000, description: String(r.description),
          }
        })
      const events = (db.prepare(`SELECT payload, created_at FROM events WHERE campaign = ? AND type = 'decision' ORDER BY id`).all(campaign) as { payload: string; created_at: number }[])
        .map(e => ({ ...(JSON.parse(e.payload) as { experiment: string; kind: string; message: string }), at: e.created_at / 1000 }))
      const merges = (db.prepare(`SELECT experiment_id, val_before, val_after, delta, sigma, created_at FROM merges WHERE campaign = ? AND reverted = 0 ORDER BY created_at`).all(campaign) as Record<string, number | string | null>[])
        .map(m => ({ experiment: String(m.experiment_id), valBefore: Number(m.val_before), valAfter: Number(m.val_after), delta: Number(m.delta), sigma: m.sigma === null ? null : Number(m.sigma), at: Number(m.created_at) / 1000 }))
      return { rows, events, merges }
    } finally {
      db.close()
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true })
  }
}

/** Observations from the workers' logs: runs abandoned at the stop, and when each worker first trained. */
function logNotes(dir: string, s: RunSettings): string[] {
  if (!existsSync(join(dir, 'logs.tgz'))) return ['no logs.tgz: the workers\' logs were not looked at']
  const tmp = mkdtempSync(join(tmpdir(), 'gpu-run-logs-'))
  try {
    execFileSync('tar', ['-xzf', join(dir, 'logs.tgz'), '-C', tmp])
    const notes: string[] = []
    for (const f of readdirSync(join(tmp, 'logs')).filter(n => /^worker/.test(n)).sort()) {
      const lines = readFileSync(join(tmp, 'logs', f), 'utf8').split('\n').filter(Boolean)
      const at = (l: string) => Number(l.split(' ')[0])
      const abandoned = lines.filter(l => /: stopped( before training)?\b/.test(l)).length
      const firstStep = lines.find(l => /: step \d+/.test(l))
      const refused = lines.filter(l => /refused|WARNING/.test(l)).map(l => l.slice(l.indexOf(' ') + 1))
      notes.push(`${f}: first training step ${firstStep ? `${(at(firstStep) - s.workersStart).toFixed(0)} s after the workers started` : 'never'}; `
        + `${abandoned} run(s) abandoned at the stop${refused.length ? `; ${refused.slice(0, 3).join('; ')}` : ''}`)
    }
    return notes
  } finally {
    rmSync(tmp, { recursive: true, force: true })
  }
}

const args = process.argv.slice(2)
const outIndex = args.indexOf('--out')
const outFile = resolve(outIndex >= 0 ? args.splice(outIndex, 2)[1] : join(ROOT, 'docs/GPU-RUN.md'))
const dir = resolve(args[0] ?? 'gpu-run-out')
for (const f of ['coordinator.db', 'run.env', 'machine.txt']) {
  if (!existsSync(join(dir, f))) {
    console.error(`error: ${join(dir, f)} is missing: point report.ts at the OUT folder of bench/gpu-run/run.sh`)
    process.exit(2)
  }
}
const settings = settingsOf(readEnvFile(join(dir, 'run.env')))
const { rows, events, merges } = readDb(dir, settings.campaign)
const summary = summarize(settings, rows, events, merges)
const page = renderPage({
  settings, summary, machine: readFileSync(join(dir, 'machine.txt'), 'utf8'), notes: logNotes(dir, settings),
  reproduce: `pnpm bundle\n${settings.command}\nnpx tsx bench/gpu-run/report.ts <OUT>`,
})
writeFileSync(outFile, page)
console.log(`${outFile}: ${summary.trained.length} experiments, ${summary.experimentsPerHourPerLane.toFixed(1)} per hour per ${settings.gpus > 0 ? 'GPU' : 'CPU worker'}, duty cycle ${(summary.dutyCycle * 100).toFixed(0)}%`)

import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import Database from 'better-sqlite3'
import { simpleGit } from 'simple-git'
import type { NoisePolicy } from '@autoresearch-grid/shared'
import { openCoordinator } from '../../src/coordinator.ts'
import { createCampaign } from '../../src/campaigns/campaigns.ts'
import { createWorkerToken } from '../../src/auth/access.ts'
import { coordinatorCli as CLI } from '../../../shared/test/support/cli.ts'

// The coordinator as its maintainer runs it: the real CLI in a process of its own, so that
// `kill -9` is a real crash (no finally blocks, no flush, open sockets reset by the kernel).
export const ROOT = fileURLToPath(new URL('../../../', import.meta.url))

/**
 * A data dir as `coordinator campaign create demo --profile cpu-tiny --no-prepare` and
 * `coordinator token create <name>` leave it (seeded from trainer/train.py), made in this process:
 * each CLI start costs seconds on a busy machine, and these tests are about what comes after.
 * Its campaign runs the `fixed` policy unless `noise.policy` names another, as the coordinator
 * tests' helper campaign (test/helpers.ts): the fault tests script single runs that merge.
 * Returns a worker token per contributor name.
 */
export async function prepareDataDir(dataDir: string, o: { budget: number; noise?: Partial<NoisePolicy>; contributors: string[] }): Promise<string[]> {
  const app = await openCoordinator(dataDir)
  try {
    await createCampaign(app, { name: 'demo', seed: { 'train.py': await readFile(join(ROOT, 'trainer/train.py'), 'utf8') },
      spec: { budgetSeconds: o.budget, profile: 'cpu-tiny', vocabSize: 512, noise: { policy: 'fixed', ...o.noise } } })
    return o.contributors.map(name => createWorkerToken(app, name, `${name}@example.org`).token)
  } finally {
    app.close()
  }
}

export class CoordinatorProcess {
  proc: ChildProcess | null = null
  url = ''
  port = 0
  /** How many times it was started, and the time each start was listening. */
  readonly listeningAt: number[] = []
  /** Extra environment for the next start (e.g. AUTORESEARCH_TEST_CRASH_AT, src/faults/crash-point.ts). */
  env: Record<string, string> = {}

  constructor(readonly dataDir: string, readonly startArgs: string[] = []) {}

  /**
   * Starts `coordinator start` (on the previous port after the first start) and waits until it
   * listens, however long a loaded machine makes that (tap's timeout is the bound).
   */
  async start(): Promise<string> {
    const proc = spawn(process.execPath, [CLI, '--data', this.dataDir, 'start', '--port', String(this.port), ...this.startArgs], {
      stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LOG_LEVEL: 'error', ...this.env },
    })
    this.proc = proc
    let log = ''
    proc.stderr!.on('data', b => { log = (log + b).slice(-4000) })
    this.url = await new Promise<string>((resolve, reject) => {
      let out = ''
      proc.stdout!.on('data', b => {
        out += b
        const m = /listening on (http:\/\/127\.0\.0\.1:(\d+))/.exec(out)
        if (m) { this.port = Number(m[2]); resolve(m[1]) }
      })
      proc.once('exit', code => reject(new Error(`coordinator exited with ${code} before listening: ${log}`)))
    })
    this.listeningAt.push(Date.now())
    return this.url
  }

  get pid(): number {
    return this.proc?.pid ?? 0
  }

  /** The crash: SIGKILL, then wait until the process is gone. */
  async kill9(): Promise<void> {
    await this.signal('SIGKILL')
  }

  /** The orderly stop a maintainer's Ctrl-C gives. */
  async stop(): Promise<void> {
    await this.signal('SIGTERM')
  }

  private async signal(sig: NodeJS.Signals): Promise<void> {
    const proc = this.proc
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return
    const gone = new Promise<void>(resolve => proc.once('exit', () => resolve()))
    proc.kill(sig)
    const timer = setTimeout(() => proc.kill('SIGKILL'), 15_000)
    await gone
    clearTimeout(timer)
    this.proc = null
  }

  /** Resident memory of the process, from /proc (kB). */
  rssKb(): number {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${this.pid}/status`, 'utf8'))
    return m ? Number(m[1]) : 0
  }
}

/** Runs `fn` on a read-only connection to the coordinator's SQLite file (it may be running). */
export function readDb<T>(dataDir: string, fn: (db: Database.Database) => T): T {
  const db = new Database(join(dataDir, 'coordinator.db'), { readonly: true, fileMustExist: true })
  try {
    db.pragma('busy_timeout = 5000')
    return fn(db)
  } finally {
    db.close()
  }
}

/** The commits on a campaign's branch, newest first. */
export async function branchCommits(dataDir: string, campaign = 'demo'): Promise<string[]> {
  const out = await simpleGit(join(dataDir, 'git')).raw(['rev-list', `autoresearch/${campaign}`])
  return out.split('\n').filter(Boolean)
}

/** Experiment ids that have a ref under refs/experiments/. */
export async function experimentRefs(dataDir: string): Promise<Set<string>> {
  const out = await simpleGit(join(dataDir, 'git')).raw(['for-each-ref', '--format=%(refname)', 'refs/experiments/'])
  return new Set(out.split('\n').filter(Boolean).map(r => r.slice('refs/experiments/'.length)))
}

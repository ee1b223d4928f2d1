import { mkdtemp, rm, statfs, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { execa } from 'execa'
import { TRPCClientError } from '@trpc/client'
import { parseDescription, findPython, embeddedCorpusEnv, type FoundPython } from '@autoresearch-grid/trainer'
import { prepareSourceFlags, type DataSource, type Hardware } from '@autoresearch-grid/shared'
import { connect } from '../client/connect.ts'
import { probeHardware } from '../hardware/probe.ts'
import { detectSandbox } from '../sandbox/detect.ts'
import { diskFloor, diskFloorSetting, nearestExisting } from '../sandbox/limits.ts'
import { UNSAFE_FLAG } from '../sandbox/choose.ts'
import { CHECKER } from '../safety/policy.ts'
import { checkSourceData } from './source-data.ts'

export type { Check, Level } from './check.ts'
import type { Check, Level } from './check.ts'

export interface DoctorOptions {
  stateDir: string
  trainerDir: string
  url?: string
  token?: string
  /** Bytes of free disk below which the check fails / warns. */
  minFreeBytes?: number
  warnFreeBytes?: number
  timeoutMs?: number
}

const GB = 1024 ** 3

/** Pure: one line per check, with the fix under it, and a verdict. */
export function formatChecks(checks: readonly Check[]): string {
  const mark: Record<Level, string> = { ok: 'ok  ', warn: 'warn', fail: 'FAIL' }
  const lines = checks.flatMap(c => [`[${mark[c.level]}] ${c.name}: ${c.detail}`, ...(c.fix ? [`       fix: ${c.fix}`] : [])])
  const failed = checks.filter(c => c.level === 'fail').length
  const warned = checks.filter(c => c.level === 'warn').length
  lines.push(failed ? `${failed} problem${failed > 1 ? 's' : ''} to fix before this worker can contribute` : warned ? 'ready, with warnings' : 'ready')
  return lines.join('\n')
}

/**
 * `worker doctor`: everything a worker needs, checked in the order a user would fix it, each
 * problem with its fix. Talks to the coordinator without side effects: a `hello` would register a
 * worker (and re-queue the units of a running worker of the same name), so the doctor checks the
 * connection and the token with a read, and each campaign's data against its pinned fingerprint.
 */
export async function runDoctor(o: DoctorOptions): Promise<Check[]> {
  const checks: Check[] = []
  const major = Number(process.versions.node.split('.')[0])
  checks.push(major >= 20
    ? { name: 'node', level: 'ok', detail: process.versions.node }
    : { name: 'node', level: 'fail', detail: process.versions.node, fix: 'install Node.js 20 or newer (https://nodejs.org)' })

  let python: FoundPython | null = null
  try {
    python = await findPython({ importTorch: true }) // the doctor proves torch loads, not only that it is there
    checks.push({ name: 'python + torch', level: 'ok', detail: `torch ${python.torchVersion} at ${python.path}` })
  } catch (err) {
    checks.push({ name: 'python + torch', level: 'fail', detail: 'no Python with PyTorch', fix: (err as Error).message })
  }

  let hardware: Hardware | null = null
  if (python) {
    try {
      hardware = await probeHardware({ python: python.path })
      const nvidiaSmi = await execa('nvidia-smi', ['-L'], { reject: false, stdin: 'ignore', timeout: 20_000 })
      const smiSees = nvidiaSmi.exitCode === 0 && /GPU \d+:/.test(String(nvidiaSmi.stdout))
      if (hardware.gpus.length) {
        checks.push({ name: 'gpu', level: 'ok', detail: `${hardware.gpus.map(g => g.name).join(', ')} (class ${hardware.hardwareClass})` })
      } else if (smiSees) {
        checks.push({ name: 'gpu', level: 'fail', detail: 'nvidia-smi sees a GPU but torch does not', fix: 'install a CUDA build of PyTorch (https://pytorch.org/get-started/locally/) and point AUTORESEARCH_PYTHON at it' })
      } else {
        checks.push({ name: 'gpu', level: 'warn', detail: `no CUDA GPU (class ${hardware.hardwareClass}): only cpu-tiny campaigns`, fix: 'on a GPU box, install the NVIDIA driver and a CUDA build of PyTorch' })
      }
    } catch (err) {
      checks.push({ name: 'gpu', level: 'fail', detail: (err as Error).message.split('\n')[0], fix: 'run the probe by hand: python -c "import torch; print(torch.cuda.is_available())"' })
    }
    const probe = await execa(python.path, ['-I', '-B', CHECKER, join(o.trainerDir, 'train.py')], { reject: false, stdin: 'ignore' })
    checks.push(probe.exitCode === 0
      ? { name: 'safety checker', level: 'ok', detail: 'the shipped train.py passes the policy' }
      : { name: 'safety checker', level: 'fail', detail: String(probe.stdout || probe.stderr).trim().slice(0, 300), fix: 'the worker checkout is damaged or outdated: update it (git pull)' })
  }

  try {
    const at = nearestExisting(o.stateDir)
    const s = await statfs(at)
    const free = s.bavail * s.bsize
    // Below the floor the launcher stops a run that wrote its share of the fall (sandbox/limits.ts),
    // `worker join` refuses to start, and each run waits for room.
    const floor = diskFloor(at, diskFloorSetting())
    const min = o.minFreeBytes ?? Math.max(2 * GB, floor)
    const warn = o.warnFreeBytes ?? 20 * GB
    const detail = `${(free / GB).toFixed(1)} GB free at ${at}; runs are stopped below ${(floor / GB).toFixed(1)} GB free`
    checks.push(free < min
      ? { name: 'disk', level: 'fail', detail, fix: `free at least ${Math.ceil(min / GB)} GB there, or pass --state on a bigger disk` }
      : free < warn
        ? { name: 'disk', level: 'warn', detail, fix: `gpu campaigns download data shards: ${(warn / GB).toFixed(0)} GB or more is comfortable` }
        : { name: 'disk', level: 'ok', detail })
  } catch (err) {
    checks.push({ name: 'disk', level: 'warn', detail: `cannot tell: ${(err as Error).message}` })
  }

  if (python) checks.push(await checkSandbox(python.path))

  if (!o.url) {
    checks.push({ name: 'coordinator', level: 'warn', detail: 'not checked', fix: 'run `worker doctor <url> --token <token>` to check the connection, the token and each campaign\'s data' })
    return checks
  }
  checks.push(...await checkCoordinator(o, python))
  return checks
}

/** The sandbox campaign code runs in: without one, `worker join` refuses other contributors' code. */
export async function checkSandbox(python: string): Promise<Check> {
  const found = await detectSandbox(python, { fresh: true })
  if (found.ok) return { name: 'sandbox', level: 'ok', detail: found.how }
  return {
    name: 'sandbox', level: 'fail',
    detail: `${found.problem}: \`worker join\` refuses to run other contributors' code (only ${UNSAFE_FLAG} would run it, as your user)`,
    fix: found.fix,
  }
}

/** The connection, the token and (with a Python) each campaign's data. */
export async function checkCoordinator(o: DoctorOptions, python: FoundPython | null): Promise<Check[]> {
  const checks: Check[] = []
  let conn
  try {
    conn = connect(o.url!, o.token ?? '')
  } catch (err) {
    return [{ name: 'coordinator', level: 'fail', detail: (err as Error).message, fix: 'pass the coordinator\'s address, e.g. http://coordinator.example.org:8377' }]
  }
  const timeout = o.timeoutMs ?? 15_000
  const within = <T>(p: Promise<T>) => Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no answer within ${timeout / 1000}s`)), timeout).unref())])
  try {
    try {
      await within(conn.api.worker.campaign.query({ name: 'doctor' }))
      checks.push({ name: 'coordinator', level: 'ok', detail: `${o.url} answers, and the token is accepted` })
    } catch (err) {
      const code = err instanceof TRPCClientError ? (err.data as { code?: string } | undefined)?.code : undefined
      if (code === 'UNAUTHORIZED' || code === 'FORBIDDEN') {
        checks.push({ name: 'coordinator', level: 'fail', detail: `${o.url} refused the token`, fix: 'ask the maintainer for a worker token (coordinator token create <you>) and pass it with --token or AUTORESEARCH_TOKEN' })
      } else {
        checks.push({ name: 'coordinator', level: 'fail', detail: `cannot reach ${o.url}: ${(err as Error).message}`, fix: 'is the coordinator running, and is its port open from here (firewall, proxy that blocks WebSocket upgrades)?' })
      }
      return checks
    }
    let campaigns: DoctorCampaign[] = []
    try {
      campaigns = await within(conn.api.dashboard.campaigns.query())
    } catch (err) {
      checks.push({ name: 'campaigns', level: 'warn', detail: `cannot list campaigns: ${(err as Error).message}` })
    }
    for (const c of campaigns) checks.push(await checkData(o, python, c))
  } finally {
    await conn.close()
  }
  return checks
}

type DoctorCampaign = { name: string; spec: { profile: 'gpu' | 'cpu-tiny'; fingerprint: string | null; vocabSize: number; data?: DataSource } }

/** The worker's prepared data for one campaign (its own data source) against the campaign's pinned fingerprint. */
async function checkData(o: DoctorOptions, python: FoundPython | null, c: DoctorCampaign): Promise<Check> {
  const name = `data for ${c.name}`
  if (!python) return { name, level: 'fail', detail: 'not checked: no Python with torch' }
  const httpBase = o.url!.replace(/^ws/, 'http').replace(/\/trpc\/?$/, '')
  const tmp = await mkdtemp(join(tmpdir(), 'arg-doctor-'))
  try {
    const special = await checkSourceData({ stateDir: o.stateDir, trainerDir: o.trainerDir, httpBase, token: o.token }, python, c)
    if (special) return special
    const flags = prepareSourceFlags(c.spec.data ?? { kind: 'embedded' })!
    const res = await fetch(new URL(`/tokenizer/${c.name}`, httpBase))
    if (res.ok) {
      await writeFile(join(tmp, 'tokenizer.model'), Buffer.from(await res.arrayBuffer()))
      flags.push('--tokenizer', join(tmp, 'tokenizer.model'))
    } else {
      flags.push('--vocab-size', String(c.spec.vocabSize))
    }
    const r = await execa(python.path, ['prepare.py', ...flags, '--check'], {
      cwd: o.trainerDir, reject: false, stdin: 'ignore', timeout: 120_000,
      env: { ...embeddedCorpusEnv(), AUTORESEARCH_CACHE: join(o.stateDir, 'data', c.name), AUTORESEARCH_PROFILE: c.spec.profile },
    })
    if (r.exitCode !== 0) return { name, level: 'warn', detail: 'not prepared yet', fix: '`worker join` prepares it with the campaign\'s tokenizer on its first start (for gpu campaigns that downloads data shards)' }
    const found = parseDescription(String(r.stdout))
    if (!c.spec.fingerprint) return { name, level: 'ok', detail: `prepared (fingerprint ${found.fingerprint.slice(0, 12)}…; the campaign has not pinned one yet)` }
    return found.fingerprint === c.spec.fingerprint
      ? { name, level: 'ok', detail: `fingerprint ${found.fingerprint.slice(0, 12)}… matches the campaign` }
      : { name, level: 'fail', detail: `fingerprint ${found.fingerprint.slice(0, 12)}… differs from the campaign's ${c.spec.fingerprint.slice(0, 12)}…`, fix: `delete ${join(o.stateDir, 'data', c.name)} and let \`worker join\` prepare it again with the campaign's tokenizer` }
  } catch (err) {
    return { name, level: 'warn', detail: `cannot check: ${(err as Error).message}` }
  } finally {
    await rm(tmp, { recursive: true, force: true })
  }
}

import { createHash } from 'node:crypto'
import { createReadStream, createWriteStream } from 'node:fs'
import { mkdir, open, readFile, rename, rm, stat, statfs, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { datasetId, DatasetManifest, type DatasetFile } from '@autoresearch-grid/shared'
import { pause } from '../client/backoff.ts'

/**
 * Downloads the prepared data set a coordinator serves (a campaign whose data only it has) into a
 * folder of prepare.py's layout, so the trainer, the sandbox and the evaluator read it exactly as
 * data this machine prepared.
 *
 * - Content-addressed: the copy lives at `<root>/<manifest id>/`, so every loop of the machine
 *   (`--gpus`) and every campaign serving the same files uses one copy, downloaded once.
 * - Resumable: files grow in `<root>/<id>.partial/` as `<name>.part`; an interrupted download goes
 *   on from where it stopped with an HTTP Range request (a server that answers 200 instead of 206
 *   sends it whole again).
 * - Verified: every file's sha256 must match the manifest; a mismatch is thrown away and fetched
 *   again once, then reported. The folder is renamed into place only when all files are whole, so a
 *   data set folder that exists is complete.
 * - One downloader per machine: `<root>/<id>.lock` (O_EXCL) holds the pid of the process that
 *   downloads; the others wait for the folder (and take over if that process died).
 */

export interface ServedDataOptions {
  /** Where served data sets live on this machine (shared by its loops). */
  root: string
  /** The coordinator's HTTP base URL. */
  httpBase: string
  /** The manifest's URL path (`HelloReply.campaigns[].dataPath`). */
  dataPath: string
  /** The worker token: served data is not public. */
  token: string
  log?: (line: string) => void
  signal?: AbortSignal
  /** Download attempts per file (default 6), and the first pause between them, doubled each time (default 1 s). */
  attempts?: number
  retryBaseMs?: number
  /** How long to wait for another process's download before giving up (default 6 h). */
  waitMs?: number
}

export class ServedDataError extends Error {
  override name = 'ServedDataError'
}

const sha256Text = (text: string) => createHash('sha256').update(text).digest('hex')

async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256')
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) h.update(chunk as Buffer)
  return h.digest('hex')
}

/** A file system error in words that say what to do. */
export function diskProblem(err: unknown, where: string, needBytes: number): string | null {
  const code = (err as NodeJS.ErrnoException).code
  const gb = needBytes >= 1e9 ? `${(needBytes / 1e9).toFixed(1)} GB` : `${(needBytes / 1e6).toFixed(1)} MB`
  if (code === 'ENOSPC') return `the disk holding ${where} is full (the data set needs ${gb}): free space there or start the worker with --state on a larger disk`
  if (code === 'EFBIG') return `a file of the data set is larger than this process may write (ulimit -f; the data set needs ${gb}): raise that limit`
  if (code === 'EACCES' || code === 'EROFS') return `cannot write to ${where} (${code}): start the worker with --state on a writable folder`
  return null
}

export async function fetchManifest(o: Pick<ServedDataOptions, 'httpBase' | 'dataPath' | 'token' | 'signal'>): Promise<DatasetManifest> {
  const url = new URL(o.dataPath, o.httpBase)
  const res = await fetch(url, { headers: { authorization: `Bearer ${o.token}` }, signal: o.signal })
  if (!res.ok) throw new ServedDataError(`the coordinator did not serve the data set's manifest (${url.pathname}: HTTP ${res.status} ${(await res.text()).slice(0, 200)})`)
  const parsed = DatasetManifest.safeParse(await res.json())
  if (!parsed.success) throw new ServedDataError(`the coordinator's data set manifest is malformed: ${parsed.error.issues[0]?.message}`)
  if (datasetId(parsed.data.files, sha256Text) !== parsed.data.id) throw new ServedDataError('the coordinator\'s data set manifest does not match its own id: refusing it')
  return parsed.data
}

/** One attempt: appends what is missing of `file` to `part` (Range from its size). */
async function fetchInto(o: ServedDataOptions, file: DatasetFile, part: string): Promise<void> {
  const have = await stat(part).then(s => s.size, () => 0)
  if (have === file.size) return
  if (have > file.size) await unlink(part)
  const from = have > file.size ? 0 : have
  const url = new URL(`${o.dataPath.replace(/\/$/, '')}/files/${encodeURIComponent(file.name)}`, o.httpBase)
  const res = await fetch(url, { headers: { authorization: `Bearer ${o.token}`, ...(from ? { range: `bytes=${from}-` } : {}) }, signal: o.signal })
  if (res.status === 416) return // nothing left to send: the size check decides
  if (!res.ok || !res.body) throw Object.assign(new ServedDataError(`HTTP ${res.status} for ${file.name}: ${(await res.text().catch(() => '')).slice(0, 200)}`), { status: res.status })
  // 206: the rest; 200: the whole file again (a server without Range support).
  const append = from > 0 && res.status === 206
  await pipeline(Readable.fromWeb(res.body as never), createWriteStream(part, { flags: append ? 'a' : 'w' }))
}

/** Downloads one file into the partial folder until it is whole and verified. */
async function fetchFile(o: ServedDataOptions, file: DatasetFile, partial: string, totalBytes: number): Promise<void> {
  const done = join(partial, file.name)
  if (await stat(done).then(s => s.size === file.size, () => false)) return
  const part = `${done}.part`
  const attempts = o.attempts ?? 6
  let corrupt = 0
  for (let attempt = 1; ; attempt++) {
    if (o.signal?.aborted) throw new ServedDataError('the download was cancelled')
    try {
      await fetchInto(o, file, part)
      const size = await stat(part).then(s => s.size, () => 0)
      if (size !== file.size) throw new ServedDataError(`${file.name}: the connection ended after ${size} of ${file.size} bytes`)
      if ((await sha256File(part)) !== file.sha256) {
        await unlink(part)
        if (++corrupt >= 2) throw Object.assign(new ServedDataError(`${file.name} arrived corrupt twice (its sha256 does not match the manifest): the coordinator's copy may have changed; ask its maintainer`), { final: true })
        o.log?.(`data set: ${file.name} arrived corrupt (sha256 mismatch); fetching it again`)
        continue
      }
      await rename(part, done)
      return
    } catch (err) {
      const disk = diskProblem(err, partial, totalBytes)
      if (disk) throw new ServedDataError(disk)
      const status = (err as { status?: number }).status
      if ((err as { final?: boolean }).final || o.signal?.aborted || status === 401 || status === 403 || status === 404 || attempt >= attempts) {
        throw err instanceof ServedDataError ? err : new ServedDataError(`downloading ${file.name} failed after ${attempt} attempt(s): ${(err as Error).message}`)
      }
      const have = await stat(part).then(s => s.size, () => 0)
      const wait = (o.retryBaseMs ?? 1000) * 2 ** (attempt - 1)
      o.log?.(`data set: ${file.name} interrupted at ${have} of ${file.size} bytes (${(err as Error).message}); resuming in ${(wait / 1000).toFixed(1)} s`)
      await pause(wait, o.signal)
    }
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** Takes the machine-wide lock of a data set, or returns false while another live process holds it. */
async function tryLock(lock: string): Promise<boolean> {
  try {
    const fh = await open(lock, 'wx')
    await fh.writeFile(String(process.pid))
    await fh.close()
    return true
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    const pid = Number((await readFile(lock, 'utf8').catch(() => '')).trim())
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid)) return false
    // Left behind by a process that died (or half-written): take it over.
    await rm(lock, { force: true })
    return tryLock(lock)
  }
}

const exists = (p: string) => stat(p).then(() => true, () => false)

export type Served = { dir: string; manifest: DatasetManifest; downloaded: boolean }

/**
 * The served data sets of one process: create one per process and share it among its loops. The
 * lock file only tells processes apart (a lock holding our own pid is taken for one a previous
 * process of the same pid left behind), so downloads within the process meet here instead.
 */
export class ServedDownloads {
  /** Downloads in flight, by folder. */
  private readonly inFlight = new Map<string, Promise<Served>>()

  /**
   * Makes sure the data set is here, whole and verified; returns its folder (prepare.py's layout:
   * pass it as AUTORESEARCH_DATA). Downloads only what is missing.
   */
  async ensure(o: ServedDataOptions): Promise<Served> {
    const manifest = await fetchManifest(o)
    const dir = join(o.root, manifest.id)
    let job = this.inFlight.get(dir)
    if (!job) {
      job = download(o, manifest, dir).finally(() => this.inFlight.delete(dir))
      this.inFlight.set(dir, job)
      return job
    }
    const shared = await job
    return { ...shared, downloaded: false }
  }
}

async function download(o: ServedDataOptions, manifest: DatasetManifest, dir: string): Promise<Served> {
  if (await exists(join(dir, 'meta.json'))) return { dir, manifest, downloaded: false }
  await mkdir(o.root, { recursive: true }).catch(err => { throw new ServedDataError(diskProblem(err, o.root, 0) ?? (err as Error).message) })
  const lock = join(o.root, `${manifest.id}.lock`)
  const deadline = Date.now() + (o.waitMs ?? 6 * 3600_000)
  let said = false
  while (!(await tryLock(lock))) {
    if (await exists(join(dir, 'meta.json'))) return { dir, manifest, downloaded: false }
    if (!said) o.log?.(`data set ${manifest.id.slice(0, 12)}: another process of this machine is downloading it; waiting`)
    said = true
    if (Date.now() > deadline || o.signal?.aborted) throw new ServedDataError(`waited too long for another process to download the data set into ${o.root}`)
    await pause(1000, o.signal)
  }
  try {
    if (await exists(join(dir, 'meta.json'))) return { dir, manifest, downloaded: false }
    const partial = join(o.root, `${manifest.id}.partial`)
    await mkdir(partial, { recursive: true })
    const total = manifest.files.reduce((n, f) => n + f.size, 0)
    // Said before the first byte rather than after gigabytes: the disk cannot hold what is missing.
    const have = (await Promise.all(manifest.files.map(f => stat(join(partial, f.name)).then(s => s.size, () => stat(join(partial, `${f.name}.part`)).then(s => s.size, () => 0))))).reduce((a, b) => a + b, 0)
    const free = await statfs(o.root).then(s => s.bavail * s.bsize, () => Infinity)
    if (free < total - have) throw new ServedDataError(diskProblem(Object.assign(new Error('no space'), { code: 'ENOSPC' }), o.root, total)!)
    o.log?.(`data set ${manifest.id.slice(0, 12)}: downloading ${(total / 1e6).toFixed(1)} MB from the coordinator`)
    // meta.json last: prepare.py takes a folder with meta.json for a prepared one.
    const order = [...manifest.files].sort((a, b) => Number(a.name === 'meta.json') - Number(b.name === 'meta.json'))
    for (const file of order) await fetchFile(o, file, partial, total)
    await rm(dir, { recursive: true, force: true })
    await rename(partial, dir)
    return { dir, manifest, downloaded: true }
  } finally {
    await rm(lock, { force: true })
  }
}

import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Report } from '@autoresearch-grid/shared'

export interface Spooled { workerId: string; report: Report }

/** How a `put` went: on disk, or only in memory because the disk refused it (and why, in words). */
export type Kept = { durable: true } | { durable: false; problem: string }

/** Pure: a failed write to the spool, in words that say what to do. */
export function describeWriteError(dir: string, err: unknown): string {
  const e = err as NodeJS.ErrnoException
  const fix: Record<string, string> = {
    ENOSPC: `the disk holding ${dir} is full: free some space there`,
    EDQUOT: `the disk quota for ${dir} is used up: free some space or raise the quota`,
    EFBIG: `the result is larger than this process may write (ulimit -f): raise that limit`,
    EROFS: `${dir} is on a read-only file system: start the worker with --state on a writable disk`,
    EACCES: `the worker may not write to ${dir}: fix its permissions or use another --state`,
    EPERM: `the worker may not write to ${dir}: fix its permissions or use another --state`,
  }
  const what = e.code && !e.message.startsWith(e.code) ? `${e.code}: ${e.message}` : e.message
  return `${fix[e.code ?? ''] ?? `writing to ${dir} failed`} (${what})`
}

/**
 * Results are written here before they are sent and removed once the coordinator has them, so a
 * result survives a lost connection or a worker restart. Writes go through a temp file and a
 * rename: a crash mid-write never leaves half a report behind, and only whole `.json` files are
 * read back.
 *
 * When the disk refuses a result (full, quota, read-only), the result is kept in memory instead
 * and listed with the rest, so it is still delivered while the worker runs; each `list` tries
 * again to put it on disk, where it survives a restart. What failed to write is removed, so a
 * full disk does not fill up further with half-written temp files.
 */
export class Spool {
  private readonly unsaved = new Map<string, Spooled>()

  constructor(readonly dir: string) {}

  async put(item: Spooled): Promise<Kept> {
    try {
      await this.write(item)
      this.unsaved.delete(item.report.unitId)
      return { durable: true }
    } catch (err) {
      this.unsaved.set(item.report.unitId, item)
      return { durable: false, problem: describeWriteError(this.dir, err) }
    }
  }

  private async write(item: Spooled): Promise<void> {
    await mkdir(this.dir, { recursive: true })
    const file = join(this.dir, `${item.report.unitId}.json`)
    try {
      await writeFile(`${file}.tmp`, JSON.stringify(item))
      await rename(`${file}.tmp`, file)
    } catch (err) {
      await rm(`${file}.tmp`, { force: true }).catch(() => {})
      throw err
    }
  }

  async remove(unitId: string): Promise<void> {
    this.unsaved.delete(unitId)
    await rm(join(this.dir, `${unitId}.json`), { force: true })
  }

  /** Results held in memory only: lost if the worker stops before they are delivered. */
  get unsavedCount(): number {
    return this.unsaved.size
  }

  async list(): Promise<Spooled[]> {
    for (const item of [...this.unsaved.values()]) {
      await this.write(item).then(() => this.unsaved.delete(item.report.unitId), () => {})
    }
    let names: string[] = []
    try {
      names = (await readdir(this.dir)).filter(n => n.endsWith('.json'))
    } catch {
      names = []
    }
    const out: Spooled[] = []
    for (const n of names) {
      try {
        const raw = JSON.parse(await readFile(join(this.dir, n), 'utf8'))
        out.push({ workerId: String(raw.workerId), report: Report.parse(raw.report) })
      } catch {
        await rename(join(this.dir, n), join(this.dir, `${n}.unreadable`)).catch(() => {})
      }
    }
    return [...out, ...this.unsaved.values()]
  }
}

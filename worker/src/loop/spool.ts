import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Report } from '@autoresearch-grid/shared'

export interface Spooled { workerId: string; report: Report }

/**
 * Results are written here before they are sent and removed once the coordinator has them, so a
 * result survives a lost connection or a worker restart. Writes go through a temp file and a
 * rename: a crash mid-write never leaves half a report behind.
 */
export class Spool {
  constructor(readonly dir: string) {}

  async put(item: Spooled): Promise<void> {
    await mkdir(this.dir, { recursive: true })
    const file = join(this.dir, `${item.report.unitId}.json`)
    await writeFile(`${file}.tmp`, JSON.stringify(item))
    await rename(`${file}.tmp`, file)
  }

  async remove(unitId: string): Promise<void> {
    await rm(join(this.dir, `${unitId}.json`), { force: true })
  }

  async list(): Promise<Spooled[]> {
    let names: string[] = []
    try {
      names = (await readdir(this.dir)).filter(n => n.endsWith('.json'))
    } catch {
      return []
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
    return out
  }
}

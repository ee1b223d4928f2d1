import { join } from 'node:path'
import type { HelloReply } from '@autoresearch-grid/shared'
import { CampaignDataError, type DataPaths } from './campaign-data.ts'
import type { DataPreparer } from './preparer.ts'

type Campaign = HelloReply['campaigns'][number]

export interface LaneDataOptions {
  preparer: DataPreparer
  /** Prepared data of this machine: `<root>/<campaign>`, served data sets under `<root>/_served`. */
  root: string
  python: string
  trainerDir: string
  /** The coordinator's HTTP base and the worker token: tokenizers and served data come from it. */
  httpBase: string
  token: string
  log(line: string): void
  signal?: AbortSignal
}

/**
 * The campaigns' data as one `worker join` lane has it: prepared (the folder the trainer reads and
 * the fingerprint `hello` reports, prepared with the coordinator's tokenizer so it matches), or not
 * to be had here and why, in which case the lane takes work from the other campaigns only.
 */
export class LaneData {
  /** Campaign → fingerprint of its prepared data; `hello` and the feed carry it. */
  readonly fingerprints: Record<string, string> = {}
  /** Campaign → the prepared data set folder the trainer reads (AUTORESEARCH_DATA). */
  private readonly dirs = new Map<string, string>()
  private readonly unavailable = new Map<string, string>()

  constructor(private readonly o: LaneDataOptions) {}

  cacheDir(campaign: string): string {
    return join(this.o.root, campaign)
  }

  isUnavailable(campaign: string): boolean {
    return this.unavailable.has(campaign)
  }

  async prepare(c: Campaign): Promise<void> {
    if (this.dirs.has(c.name) || this.unavailable.has(c.name)) return
    const { preparer, root, python, trainerDir, httpBase, token, log, signal } = this.o
    try {
      const p = await preparer.prepare(c, { python, trainerDir, cacheDir: this.cacheDir(c.name), servedRoot: join(root, '_served'), httpBase, token, log, signal })
      this.fingerprints[c.name] = p.fingerprint
      this.dirs.set(c.name, p.dataDir)
      if (c.spec.fingerprint && p.fingerprint !== c.spec.fingerprint) log(`data of ${c.name} prepared, but its fingerprint ${p.fingerprint.slice(0, 12)}… is not the campaign's ${c.spec.fingerprint.slice(0, 12)}…: the coordinator will refuse it (see below)`)
    } catch (err) {
      if (!(err instanceof CampaignDataError)) throw err
      this.unavailable.set(c.name, err.message)
      log(`not taking work from ${c.name}: ${err.message}`)
    }
  }

  /**
   * Where the trainer reads the campaign's data. A campaign this lane has not prepared yet (new
   * since it started) is looked up with a fresh `hello` and prepared first. Throws when its data
   * cannot be had: never train on other data; the lease runs out and another worker takes the unit.
   */
  async ready(campaign: string, hello: () => Promise<HelloReply>): Promise<DataPaths> {
    if (!this.dirs.has(campaign)) {
      const c = (await hello()).campaigns.find(x => x.name === campaign)
      if (c) await this.prepare(c)
      if (this.unavailable.has(campaign)) throw new Error(this.unavailable.get(campaign))
    }
    return { cacheDir: this.cacheDir(campaign), dataDir: this.dirs.get(campaign) }
  }
}

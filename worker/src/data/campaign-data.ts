import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describeSource, prepareSourceFlags, type HelloReply } from '@autoresearch-grid/shared'
import { describePrepared, ensurePrepared } from '@autoresearch-grid/trainer'
import type { ServedDownloads } from './served.ts'

type Campaign = HelloReply['campaigns'][number]

/**
 * A campaign's data on this machine, as its spec says (DESIGN §10): the source it names, prepared
 * with the tokenizer the coordinator serves (embedded, climbmix), or the prepared data set the
 * coordinator serves (a folder only it has). Either way the fingerprint is computed here by
 * prepare.py and compared with the campaign's, so a mismatch is found before any training.
 */

export interface CampaignDataOptions {
  python: string
  trainerDir: string
  /** prepare.py's cache for this campaign (AUTORESEARCH_CACHE). */
  cacheDir: string
  /** Where served data sets live, shared by the machine's loops. */
  servedRoot: string
  /** The process's served data sets (shared by its loops, so one is downloaded once). */
  served: ServedDownloads
  httpBase: string
  token: string
  log: (line: string) => void
  signal?: AbortSignal
}

/** Where the trainer reads a campaign's data: prepare.py's cache and the prepared data set. */
export interface DataPaths {
  cacheDir?: string
  dataDir?: string
}

export interface CampaignData {
  fingerprint: string
  dataDir: string
}

/** The campaign's data cannot be had on this worker; the message says why and what to do. */
export class CampaignDataError extends Error {
  override name = 'CampaignDataError'
}

/** What to do about a preparation that failed, from what prepare.py said. Pure. */
export function adviceFor(source: Campaign['spec']['data'], message: string): string {
  if (/pyarrow/i.test(message)) return 'install pyarrow for the trainer\'s Python (`pip install pyarrow`, or `cd trainer && uv sync --extra climbmix`) and start the worker again'
  if (/No space left|ENOSPC|disk holding .* is full|disk is full/i.test(message)) return 'free disk space under the worker\'s --state folder (or point --state at a larger disk) and start the worker again'
  if (/download|urlopen|Name or service|getaddrinfo|Connection|timed out|HTTP Error/i.test(message) && source.kind === 'climbmix') return 'this machine needs HTTPS access to the climbmix shards (huggingface.co, or AUTORESEARCH_CLIMBMIX_URL); check the network or a proxy and start the worker again'
  if (/embedded corpus not found/i.test(message)) return 'run the worker from a checkout with `pnpm install` done, or a release bundle (it carries the corpus)'
  return 'see the message above; `worker doctor` checks Python, torch, disk and the coordinator'
}

async function downloadTokenizer(c: Campaign, o: CampaignDataOptions): Promise<string | undefined> {
  if (!c.tokenizerPath) return undefined
  const res = await fetch(new URL(c.tokenizerPath, o.httpBase), { signal: o.signal })
  if (!res.ok) throw new CampaignDataError(`could not download the tokenizer of ${c.name}: HTTP ${res.status}; is the coordinator reachable?`)
  const file = join(o.cacheDir, '..', `${c.name}.tokenizer.model`)
  await mkdir(join(o.cacheDir, '..'), { recursive: true })
  await writeFile(file, Buffer.from(await res.arrayBuffer()))
  return file
}

export async function prepareCampaignData(c: Campaign, o: CampaignDataOptions): Promise<CampaignData> {
  // A coordinator from before campaigns named their data source means the embedded corpus.
  const source = c.spec.data ?? { kind: 'embedded' as const }
  try {
    if (source.kind === 'served') {
      if (!c.dataPath) throw new CampaignDataError(`campaign ${c.name} says its data is served, but the coordinator named no data path: update the coordinator`)
      const served = await o.served.ensure({ root: o.servedRoot, httpBase: o.httpBase, dataPath: c.dataPath, token: o.token, log: o.log, signal: o.signal })
      if (served.downloaded) o.log(`data set of ${c.name} downloaded and verified (${served.manifest.files.length} files) into ${served.dir}`)
      const d = await describePrepared({ python: o.python, trainerDir: o.trainerDir, dataDir: served.dir, profile: c.spec.profile, signal: o.signal })
      return { fingerprint: d.fingerprint, dataDir: served.dir }
    }
    const flags = prepareSourceFlags(source)!
    const tokenizerFile = await downloadTokenizer(c, o)
    o.log(`preparing data for ${c.name}: ${describeSource(source)}, profile ${c.spec.profile}`)
    const p = await ensurePrepared({
      python: o.python, trainerDir: o.trainerDir, cacheDir: o.cacheDir, profile: c.spec.profile, tokenizerFile, vocabSize: c.spec.vocabSize,
      source: flags[1], numShards: source.kind === 'climbmix' ? source.shards : undefined, signal: o.signal,
      onLine: line => { if (/^download|retrying|^training|^prepared/.test(line)) o.log(`${c.name}: ${line}`) },
    })
    return { fingerprint: p.fingerprint, dataDir: p.dataDir }
  } catch (err) {
    if (o.signal?.aborted) throw err
    const message = (err as Error).message.split('\n--- prepare log')[0]
    throw new CampaignDataError(`cannot get the data of ${c.name} (${describeSource(source)}): ${message}; to fix: ${adviceFor(source, (err as Error).message)}`)
  }
}

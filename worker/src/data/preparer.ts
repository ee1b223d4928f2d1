import type { HelloReply } from '@autoresearch-grid/shared'
import { prepareCampaignData, type CampaignData, type CampaignDataOptions } from './campaign-data.ts'
import { ServedDownloads } from './served.ts'

type Campaign = HelloReply['campaigns'][number]

/**
 * The data preparations of one worker process, shared by its GPU loops (`worker join --gpus`): a
 * data set is prepared, or downloaded, once however many loops want it. Create one per process
 * and hand it to each loop; a loop given none makes its own.
 */
export class DataPreparer {
  /** Preparations started, by what makes them differ; a failed one is forgotten, to be tried again. */
  private readonly jobs = new Map<string, Promise<CampaignData>>()
  private readonly served = new ServedDownloads()

  prepare(c: Campaign, o: Omit<CampaignDataOptions, 'served'>): Promise<CampaignData> {
    const key = `${o.cacheDir}\0${c.tokenizerPath ?? ''}\0${c.spec.profile}\0${JSON.stringify(c.spec.data ?? null)}`
    let job = this.jobs.get(key)
    if (!job) {
      job = prepareCampaignData(c, { ...o, served: this.served })
      this.jobs.set(key, job)
      job.catch(() => this.jobs.delete(key))
    }
    return job
  }
}

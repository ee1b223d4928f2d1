import { desc, eq } from 'drizzle-orm'
import { isCandidate } from '@autoresearch-grid/shared'
import type { Ctx } from '../context.ts'
import { contributors, experiments, measurements } from '../db/schema.ts'
import { getCampaign } from '../campaigns/campaigns.ts'
import { noiseFloorOfGroups } from '../ratchet/index.ts'
import { suspectContributors } from '../units/suspects.ts'
import { compareContributors, type ContributorRun } from './monitor-rule.ts'

/** How many of the newest measurements the monitor reads: enough for a campaign's recent history. */
const WINDOW = 20_000

/**
 * The contributor monitor (issue 15): for each contributor, their runs — claims included — against
 * other contributors' runs of the same commits on the same class, flagged when they disagree
 * beyond noise more often than chance explains. It prompts the maintainer; it bans nobody.
 */
export function contributorMonitor(app: Ctx, campaign: string) {
  const c = getCampaign(app, campaign)
  if (!c) return []
  const rows = app.db.select({ commit: measurements.commit, cls: measurements.hardwareClass, valBpb: measurements.valBpb, kind: measurements.kind,
    contributorId: experiments.contributorId, name: contributors.name }).from(measurements)
    .innerJoin(experiments, eq(experiments.id, measurements.experimentId)).leftJoin(contributors, eq(contributors.id, experiments.contributorId))
    .where(eq(measurements.campaign, campaign)).orderBy(desc(measurements.id)).limit(WINDOW).all()
  // σ per class without one contributor's runs (monitor-rule.ts), from the same runs the ratchet's σ counts (no claims).
  const sigmas = new Map<string, number>()
  const sigmaOf = (cls: string, without: string) => {
    const key = `${cls}\0${without}`
    let sigma = sigmas.get(key)
    if (sigma === undefined) {
      const groups = new Map<string, number[]>()
      for (const r of rows) {
        if (r.cls !== cls || r.contributorId === without || isCandidate(r.kind)) continue
        groups.set(r.commit, [...(groups.get(r.commit) ?? []), r.valBpb])
      }
      sigmas.set(key, (sigma = noiseFloorOfGroups([...groups.values()], c.spec.noise.priorSigma).sigma))
    }
    return sigma
  }
  const runs: ContributorRun[] = rows.map(r => ({ ...r, claim: isCandidate(r.kind) }))
  const suspects = new Set(suspectContributors(app.db, campaign, c.spec.noise.priorSigma))
  const names = new Map(rows.map(r => [r.contributorId, r.name ?? r.contributorId]))
  return compareContributors(runs, sigmaOf).map(s => ({ ...s, name: names.get(s.contributorId) ?? s.contributorId, suspect: suspects.has(s.contributorId) }))
}

import { type WorkUnit, isCandidate } from '@autoresearch-grid/shared'
import type { Ctx } from '../context.ts'
import type { Campaign } from '../campaigns/campaigns.ts'
import { programAt } from '../campaigns/program.ts'
import { unitProgramVersion } from './claim.ts'
import { swarmViewFor } from './read.ts'

/**
 * What a unit carries beyond its code (units/assign.ts adds it to every unit it hands out): the
 * campaign's current program.md with its version, recorded against the unit, and the swarm view
 * around the unit's parent.
 */
export async function unitExtras(ctx: Ctx, campaign: Campaign, unit: { id: string; campaign: string; parentCommit: string; kind: string }): Promise<Pick<WorkUnit, 'program' | 'swarm'>> {
  // The version its lease recorded (units/assign.ts): the text sent is the one on record.
  const version = unitProgramVersion(ctx, unit.id)
  const program = version === null ? null : await programAt(ctx, version)
  // Only agents that edit read the swarm; a baseline or verification carries none.
  return { ...(program ? { program } : {}), ...(isCandidate(unit.kind) ? { swarm: swarmViewFor(ctx, campaign, unit.parentCommit) } : {}) }
}

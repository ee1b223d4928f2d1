import { constantChanges, sourceHash, type SwarmQuery, type SwarmExperiment } from '@autoresearch-grid/shared'
import type { Agent, AgentSession, AgentTask, AgentUnit, Proposal } from './agent.ts'

/**
 * Any agent, made a member of the swarm (DESIGN §9): it follows the campaign's program.md that the
 * unit carries (not the worker's own copy), may search the campaign's experiments, and never hands
 * in a candidate the swarm already has on the same parent. Each candidate is checked against the
 * unit's swarm view, then claimed at the coordinator, which answers in one transaction whether the
 * same code was measured there or is being trained by another unit; a duplicate goes back to the
 * agent as a failure to repair ("choose something else"), a few times at most.
 */

export interface Claimed {
  duplicateOf: { id: string; description: string; status: string; valBpb: number | null } | null
}

export interface SwarmHooks {
  log: (line: string) => void
  search?: (unit: AgentUnit, query: SwarmQuery) => Promise<SwarmExperiment[]>
  claim?: (unit: AgentUnit, claim: { sourceHash: string; description: string; changes: string[]; agent: string }) => Promise<Claimed>
  /** Candidates asked for after a duplicate before the last one is taken anyway (default 3). */
  maxRedraws?: number
}

/** Only the editable files, as the coordinator hashes what was trained. */
function editable(files: Record<string, string>, names: readonly string[]): Record<string, string> {
  return Object.fromEntries(Object.entries(files).filter(([n]) => names.includes(n)))
}

/** Pure: the unit's own view already lists this code as tried on its parent. */
export function knownOnParent(unit: AgentUnit, hash: string): SwarmExperiment | null {
  return unit.swarm?.nearby.find(e => e.onParent && e.sourceHash === hash) ?? null
}

/** A unified-diff-like listing of changed constants, for the claim (what other agents will see). */
function changesOf(before: Record<string, string>, after: Record<string, string>): string[] {
  const lines: string[] = []
  for (const [name, text] of Object.entries(after)) {
    const old = new Set((before[name] ?? '').split('\n'))
    const now = new Set(text.split('\n'))
    for (const l of old) if (!now.has(l)) lines.push(`-${l}`)
    for (const l of now) if (!old.has(l)) lines.push(`+${l}`)
  }
  return constantChanges(lines.join('\n'))
}

export function withSwarm(agent: Agent, hooks: SwarmHooks): Agent {
  return {
    label: agent.label,
    begin(task: AgentTask): AgentSession {
      const unit = task.unit
      const search = hooks.search
      const inner = agent.begin({ ...task, program: unit.program?.text ?? task.program, ...(search ? { search: (q: SwarmQuery) => search(unit, q) } : {}) })
      const parentHash = sourceHash(editable(task.files, unit.editableFiles))

      const duplicateOf = async (p: Proposal): Promise<Claimed['duplicateOf']> => {
        const files = editable(p.files, unit.editableFiles)
        const hash = sourceHash(files)
        if (hash === parentHash) return null // no change at all: nothing to claim
        const known = knownOnParent(unit, hash)
        if (known) return { id: known.id, description: known.description, status: known.status, valBpb: known.valBpb }
        if (!hooks.claim) return null
        try {
          return (await hooks.claim(unit, { sourceHash: hash, description: p.description.slice(0, 300), changes: changesOf(editable(task.files, unit.editableFiles), files), agent: agent.label })).duplicateOf
        } catch (err) {
          // Advice, not a gate: an unreachable coordinator must not stop the experiment.
          hooks.log(`${unit.id}: could not claim the candidate (${(err as Error).message}); going on`)
          return null
        }
      }

      const unique = async (first: Proposal | null): Promise<Proposal | null> => {
        let p = first
        for (let redraw = 1; p; redraw++) {
          const dup = await duplicateOf(p)
          if (!dup) return p
          const what = dup.status === 'in-flight' ? 'is being trained right now by another worker' : `was already measured (${dup.status}${dup.valBpb !== null ? `, val_bpb ${dup.valBpb.toFixed(6)}` : ''})`
          if (redraw > (hooks.maxRedraws ?? 3)) {
            hooks.log(`${unit.id}: the agent keeps choosing candidates the swarm already has; taking "${p.description}" anyway`)
            return p
          }
          hooks.log(`${unit.id}: "${p.description}" ${what} on this parent as ${dup.id}; asking ${agent.label} for another`)
          const next = await inner.repair({ kind: 'duplicate', error: `This exact code ${what} on the same parent, as experiment ${dup.id} ("${dup.description}"). Training it again would measure nothing new: choose a different change.`, logTail: '', attempt: redraw })
          if (!next) return p
          p = next
        }
        return p
      }

      return {
        propose: async () => (await unique(await inner.propose()))!,
        repair: async failure => unique(await inner.repair(failure)),
        usage: () => inner.usage(),
      }
    },
  }
}

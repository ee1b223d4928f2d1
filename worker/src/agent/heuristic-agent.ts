import { parseConstants, proposeHeuristic } from './heuristic.ts'
import { emptyUsage, type Agent, type AgentSession, type AgentTask, type Failure, type Proposal } from './agent.ts'
import { reapplyDiff } from './rebase.ts'

/**
 * Pure: re-applies the constant changes of a reference diff (`+NAME = value` lines) to a newer
 * train.py, which is how the heuristic handles a rebase unit. Returns null when none applies.
 */
export function reapplyConstants(source: string, diff: string): { source: string; changes: string[] } | null {
  const constants = parseConstants(source)
  const lines = source.split('\n')
  const changes: string[] = []
  for (const m of diff.matchAll(/^\+([A-Z][A-Z0-9_]*)(\s*=\s*)(.+?)\s*$/gm)) {
    const c = constants.get(m[1])
    if (!c) continue
    const literal = m[3].replace(/\s*#.*$/, '')
    if (literal === c.literal) continue
    lines[c.line] = c.head + literal + c.tail
    changes.push(`${c.name} ${c.literal} -> ${literal}`)
  }
  return changes.length ? { source: lines.join('\n'), changes } : null
}

/**
 * The built-in researcher as an Agent: one hyperparameter mutation per proposal; a repair is a
 * different mutation (the one that crashed counts as tried).
 */
export class HeuristicAgent implements Agent {
  readonly label = 'heuristic'

  begin(task: AgentTask): AgentSession {
    // What the swarm measured or is training on this parent counts as tried too: its descriptions
    // and the constant changes of its diffs, whoever described them how.
    const onParent = (task.unit.swarm?.nearby ?? []).filter(e => e.onParent)
    const tried = [...task.unit.triedOnParent, ...onParent.flatMap(e => [e.description, ...e.changes])]
    let last: string | null = null
    let attempts = 1
    const source = task.files['train.py']

    const mutate = (seed: number, note = ''): Proposal => {
      const proposal = source === undefined ? null : proposeHeuristic({ source, tried, seed, hypothesis: task.unit.hypothesis, profile: task.unit.profile })
      if (!proposal) {
        last = null
        return { files: { ...task.files }, description: 'repeat of the parent: every heuristic mutation was already tried on it', rationale: 'nothing left to try', followUps: [] }
      }
      last = proposal.name
      return {
        files: { ...task.files, 'train.py': proposal.source },
        description: proposal.description,
        rationale: `${note}heuristic mutation ${proposal.name}${task.unit.hypothesis ? `, steered by the hypothesis "${task.unit.hypothesis.title}"` : ''}`,
        followUps: [],
      }
    }

    return {
      propose: async () => {
        // A rebase re-applies the reference diff itself (rebase.ts); failing that, its constants;
        // only when neither applies does the catalogue, steered by the hypothesis text, stand in.
        if (task.unit.kind === 'rebase' && task.unit.referenceDiff) {
          const applied = await reapplyDiff({ dir: task.dir, files: task.files, diff: task.unit.referenceDiff, base: task.unit.referenceBase })
          if (applied && JSON.stringify(applied.files) !== JSON.stringify(task.files)) {
            last = null
            const idea = task.unit.hypothesis?.title.replace(/^re-apply:\s*/, '') ?? 'the reference diff'
            return { files: applied.files, description: `re-applied (${applied.how}): ${idea}`.slice(0, 300), rationale: `git apply --3way of the reference diff onto the current best (${applied.how})`, followUps: [] }
          }
        }
        if (task.unit.kind === 'rebase' && task.unit.referenceDiff && source !== undefined) {
          const again = reapplyConstants(source, task.unit.referenceDiff)
          if (again) {
            last = null
            return { files: { ...task.files, 'train.py': again.source }, description: `re-applied: ${again.changes.join(', ')}`.slice(0, 300), rationale: 'the reference diff changed these constants', followUps: [] }
          }
        }
        return mutate(task.seed)
      },
      repair: async (failure: Failure) => {
        attempts++
        if (last) tried.push(last)
        const proposal = mutate(task.seed + failure.attempt * 7919, `after ${last ?? 'the previous candidate'} failed (${failure.error.split('\n')[0].slice(0, 120)}): `)
        return last ? proposal : null
      },
      usage: () => ({ ...emptyUsage(this.label), attempts }),
    }
  }
}

import { join } from 'node:path'
import type { Agent } from './agent.ts'
import { claudeFromEnv } from './claude.ts'
import { ExternalAgent } from './external.ts'
import { HeuristicAgent } from './heuristic-agent.ts'

export interface AgentChoice {
  /** `--agent-cmd`: an external coding agent; the explicit choice wins. */
  agentCmd?: string
  agentTimeoutSeconds?: number
  env: NodeJS.ProcessEnv
  stateDir: string
  trainerDir: string
}

/** `--agent-cmd` when given, else Claude when ANTHROPIC_API_KEY is set, else the heuristic. */
export function chooseAgent(c: AgentChoice): Agent {
  if (c.agentCmd?.trim()) {
    return new ExternalAgent({ command: c.agentCmd.trim(), promptDir: join(c.stateDir, 'agent'), lockedDir: c.trainerDir, timeoutSeconds: c.agentTimeoutSeconds, env: c.env })
  }
  return claudeFromEnv(c.env) ?? new HeuristicAgent()
}

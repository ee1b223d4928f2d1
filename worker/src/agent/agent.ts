import type { AgentUsage, FollowUp, SwarmExperiment, SwarmQuery, WorkUnit } from '@autoresearch-grid/shared'
import type { z } from 'zod'

/**
 * The researcher that edits train.py. Three kinds share this shape so the loop does not care which
 * one it has: the built-in heuristic (no key, no network), Claude through the Messages API, and an
 * external coding-agent command.
 */
export interface Agent {
  /** `heuristic`, `claude:<model>`, `external:<command>`: what reports and the hello name. */
  readonly label: string
  /** One conversation per experiment: a proposal, then zero or more repairs of it. */
  begin(task: AgentTask): AgentSession
}

export interface AgentSession {
  /** The first candidate. Throws AgentError when the agent cannot produce one. */
  propose(): Promise<Proposal>
  /**
   * The last candidate failed (crash, unusable summary, refused by the safety policy): a new
   * candidate that fixes it, or null when the agent gives up.
   */
  repair(failure: Failure): Promise<Proposal | null>
  /** Everything spent so far in this session. */
  usage(): AgentUsage
}

/** The part of a work unit an agent reads. */
export type AgentUnit = Pick<WorkUnit, 'id' | 'kind' | 'campaign' | 'profile' | 'budgetSeconds' | 'editableFiles' | 'hypothesis' | 'referenceDiff' | 'referenceBase' | 'triedOnParent'>
  & Partial<Pick<WorkUnit, 'parentCommit' | 'program' | 'swarm'>>

export interface AgentTask {
  unit: AgentUnit
  /** The parent's editable files, full text. */
  files: Record<string, string>
  /** program.md: the maintainer's research direction. */
  program: string
  /** Locked files (prepare.py) as read-only context: the agent reads them, never edits them. */
  locked?: Record<string, string>
  /** Deterministic choices (the heuristic) derive from it. */
  seed: number
  /**
   * A folder holding the parent's files, for agents that work on a directory (the external
   * command). Whatever else they leave there is discarded.
   */
  dir: string
  signal?: AbortSignal
  log?: (line: string) => void
  /** Searches the campaign's experiments (the coordinator's swarm memory); absent offline. */
  search?: (query: SwarmQuery) => Promise<SwarmExperiment[]>
}

export interface Proposal {
  /** Every editable file, full text (unchanged ones too). */
  files: Record<string, string>
  /** One line: what changed. */
  description: string
  /** Why, in a few sentences. */
  rationale: string
  followUps: z.input<typeof FollowUp>[]
}

export interface Failure {
  /**
   * `crash` (exit code, no summary, timeout), `unsafe` (refused by the static policy) or
   * `duplicate` (this exact candidate was already measured, or is being trained, on this parent).
   */
  kind: 'crash' | 'unsafe' | 'duplicate'
  /** In words: the runner's error or the policy's violations. */
  error: string
  /** The last 50 lines of the run (empty for `unsafe`). */
  logTail: string
  /** 1 for the first candidate's failure. */
  attempt: number
}

/** The agent could not produce a candidate at all (API down after retries, command failed). */
export class AgentError extends Error {
  override name = 'AgentError'
}

export function emptyUsage(agent: string): AgentUsage {
  return { agent: agent.slice(0, 80), requests: 0, inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0, costUsd: null, attempts: 1 }
}

/** Last n lines of a log, which is what a repair turn shows the agent. */
export function lastLines(text: string, n = 50): string {
  return text.split('\n').slice(-n).join('\n')
}

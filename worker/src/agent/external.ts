import { chmod, copyFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { execa } from 'execa'
import { gitWithoutHooks } from '../workspace/git.ts'
import { LIMITS } from '@autoresearch-grid/shared'
import { AgentError, emptyUsage, lastLines, type Agent, type AgentSession, type AgentTask, type Failure, type Proposal } from './agent.ts'
import { firstMessage, repairMessage, systemPrompt } from './prompt.ts'

export interface ExternalOptions {
  /** A shell command line, e.g. `claude -p --permission-mode acceptEdits` or `aider --yes --message-file`. */
  command: string
  /** Where prompt and result files are written (outside the workspace, so they are not edits). */
  promptDir: string
  /** Locked files (prepare.py) are copied in read-only for the agent to read, then removed. */
  lockedDir?: string
  lockedFiles?: readonly string[]
  timeoutSeconds?: number
  /** The agent's environment; the worker's own by default (the agent may need its API key). */
  env?: NodeJS.ProcessEnv
}

const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`

/**
 * Any coding-agent CLI as the researcher. It runs in the unit's workspace folder with the prompt
 * in a file (AUTORESEARCH_PROMPT_FILE, and the last argument); afterwards only the editable files
 * are read back, and the folder is reset to the commit it started from, so anything else the
 * command changed (other files, commits, branches) is discarded.
 */
export class ExternalAgent implements Agent {
  readonly label: string

  constructor(readonly options: ExternalOptions) {
    this.label = `external:${options.command.trim().split(/\s+/)[0] ?? 'command'}`.slice(0, 80)
  }

  begin(given: AgentTask): AgentSession {
    // A command has no way to call the swarm search: its prompt must not offer it.
    const task: AgentTask = { ...given, search: undefined }
    let current = { ...task.files }
    let calls = 0
    let attempts = 1
    const run = async (instructions: string): Promise<Proposal> => {
      calls++
      const o = this.options
      await mkdir(o.promptDir, { recursive: true })
      const stem = join(o.promptDir, `${task.unit.id.replace(/[^A-Za-z0-9_-]+/g, '_')}-${calls}`)
      const promptFile = `${stem}.prompt.md`
      const resultFile = `${stem}.result.json`
      await rm(resultFile, { force: true })
      await writeFile(promptFile, `${systemPrompt(task)}\n\n${instructions}\n\n## How to answer\nEdit ${task.unit.editableFiles.join(', ')} in the current directory; nothing else is kept.\nOptionally write JSON to the file named by $AUTORESEARCH_RESULT_FILE: {"description": "one line", "rationale": "...", "follow_ups": [{"title": "...", "body": "..."}]}.\n`)

      const git = gitWithoutHooks(task.dir)
      const branch = (await git.raw('symbolic-ref', '-q', 'HEAD')).trim()
      const start = (await git.raw('rev-parse', 'HEAD')).trim()
      for (const [name, text] of Object.entries(current)) await writeFile(join(task.dir, name), text)
      for (const name of o.lockedFiles ?? ['prepare.py']) {
        if (!o.lockedDir || task.unit.editableFiles.includes(name)) continue
        await copyFile(join(o.lockedDir, name), join(task.dir, name)).then(() => chmod(join(task.dir, name), 0o444), () => {})
      }
      let result
      try {
        result = await execa(`${o.command} ${quote(promptFile)}`, {
          shell: true, cwd: task.dir, reject: false, stdin: 'ignore', all: true,
          env: { ...(o.env ?? process.env), AUTORESEARCH_PROMPT_FILE: promptFile, AUTORESEARCH_RESULT_FILE: resultFile, AUTORESEARCH_EDITABLE_FILES: task.unit.editableFiles.join(',') },
          timeout: (o.timeoutSeconds ?? 1800) * 1000, cancelSignal: task.signal, forceKillAfterDelay: 5000,
        })
        const edited: Record<string, string> = {}
        for (const name of task.unit.editableFiles) edited[name] = await readFile(join(task.dir, name), 'utf8').catch(() => current[name])
        if (result.failed) {
          const why = result.timedOut ? `timed out after ${o.timeoutSeconds ?? 1800}s` : result.isCanceled ? 'stopped' : `exit code ${result.exitCode ?? result.signal}`
          throw new AgentError(`the agent command failed (${why}): ${lastLines(String(result.all ?? ''), 5)}`)
        }
        current = edited
      } finally {
        // Everything but the editable files' text goes: the folder is the workspace again.
        if (branch) await git.raw('symbolic-ref', 'HEAD', branch)
        await git.raw('reset', '-q', '--hard', start)
        await git.raw('clean', '-fdxq')
      }
      const answer = await readFile(resultFile, 'utf8').then(t => JSON.parse(t) as Record<string, unknown>, () => ({} as Record<string, unknown>))
      const changed = Object.keys(current).filter(n => current[n] !== task.files[n])
      const firstLine = String(result.all ?? '').trim().split('\n').filter(Boolean).pop() ?? ''
      const description = typeof answer.description === 'string' && answer.description.trim()
        ? answer.description.trim()
        : changed.length ? `${this.label} edit of ${changed.join(', ')}${firstLine ? `: ${firstLine}` : ''}` : `${this.label}: no change`
      const followUps = (Array.isArray(answer.follow_ups) ? answer.follow_ups : [])
        .filter((f): f is { title: string; body?: string } => typeof f?.title === 'string' && f.title.trim().length >= 3)
        .map(f => ({ title: f.title.trim().slice(0, LIMITS.hypothesisTitleChars), body: typeof f.body === 'string' ? f.body.slice(0, LIMITS.hypothesisBodyChars) : '' }))
        .slice(0, LIMITS.followUps)
      return {
        files: { ...current },
        description: description.replace(/\s+/g, ' ').slice(0, LIMITS.descriptionChars),
        rationale: typeof answer.rationale === 'string' ? answer.rationale.slice(0, 2000) : '',
        followUps,
      }
    }
    return {
      propose: () => run(firstMessage(task)),
      repair: async (failure: Failure) => {
        attempts++
        const before = JSON.stringify(current)
        const p = await run(repairMessage({ ...failure, logTail: lastLines(failure.logTail, 50) }))
        return JSON.stringify(p.files) === before ? null : p
      },
      usage: () => ({ ...emptyUsage(this.label), requests: calls, attempts }),
    }
  }
}

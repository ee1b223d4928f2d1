import { mkdir, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { CheckRepoActions, simpleGit, type SimpleGit } from 'simple-git'

/**
 * The worker's local git repository, where the agent's edits to one unit become commits. Each unit
 * gets its own root commit (the coordinator's parent files) on its own branch, so "the parent" is
 * always the branch's root and the diff needs no state beyond the repository itself.
 */
export interface Workspace {
  readonly dir: string
  /** Puts the parent's files on a fresh branch for the unit and commits them; returns the commit. */
  startFrom(parentCommit: string, files: Record<string, string>, options?: { unitId?: string }): Promise<string>
  /** Writes the candidate's files (only files the parent had) and commits them; returns the commit. */
  commitCandidate(files: Record<string, string>, message: string): Promise<string>
  /** Unified diff of the editable files, parent → latest candidate. Empty if nothing changed. */
  diff(): Promise<string>
  /** The local commit holding the parent's files. */
  parent(): Promise<string>
  /** The editable files: those the parent commit holds. */
  editableFiles(): Promise<string[]>
}

const IDENTITY = { name: 'autoresearch-grid worker', email: 'worker@autoresearch-grid.invalid' }

function checkFileName(name: string): void {
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/.test(name)) throw new Error(`"${name}" is not a plain file name; editable files live at the top of the workspace`)
}

/** A valid, readable branch name for a unit id or parent label. */
export function unitBranch(label: string): string {
  const safe = label.replace(/[^A-Za-z0-9_-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 100)
  return `unit/${safe || 'unnamed'}`
}

class GitWorkspace implements Workspace {
  constructor(readonly dir: string, private readonly git: SimpleGit) {}

  private async hasHead(): Promise<boolean> {
    // simple-git resolves a failing command that printed nothing, so the answer is in the output.
    try {
      return (await this.git.raw('rev-parse', '--verify', '--quiet', 'HEAD')).trim() !== ''
    } catch {
      return false
    }
  }

  async startFrom(parentCommit: string, files: Record<string, string>, options: { unitId?: string } = {}): Promise<string> {
    const names = Object.keys(files)
    if (names.length === 0) throw new Error('startFrom needs at least one file')
    names.forEach(checkFileName)
    // Clear the previous unit's files from disk and index, then point HEAD at an unborn branch:
    // the commit below becomes that branch's root.
    if (await this.hasHead()) {
      const tracked = (await this.git.raw('ls-files', '-z')).split('\0').filter(Boolean)
      for (const f of tracked) await rm(join(this.dir, f), { force: true })
    }
    await this.git.raw('read-tree', '--empty')
    const branch = unitBranch(options.unitId ?? parentCommit)
    await this.git.raw('symbolic-ref', 'HEAD', `refs/heads/${branch}`)
    await this.git.raw('update-ref', '-d', `refs/heads/${branch}`)
    return this.commitFiles(files, `parent ${parentCommit}\n\nThe coordinator's commit ${parentCommit}, as handed out${options.unitId ? ` for unit ${options.unitId}` : ''}.`)
  }

  async commitCandidate(files: Record<string, string>, message: string): Promise<string> {
    if (!(await this.hasHead())) throw new Error('commitCandidate before startFrom: there is no parent to build on')
    const editable = new Set(await this.editableFiles())
    for (const name of Object.keys(files)) {
      if (!editable.has(name)) throw new Error(`${name} is not an editable file of this unit (editable: ${[...editable].join(', ')})`)
    }
    return this.commitFiles(files, message)
  }

  private async commitFiles(files: Record<string, string>, message: string): Promise<string> {
    for (const [name, text] of Object.entries(files)) await writeFile(join(this.dir, name), text)
    await this.git.raw('add', '--', ...Object.keys(files))
    await this.git.raw('commit', '--allow-empty', '--no-verify', '--quiet', '-m', message.trim() || 'candidate')
    return (await this.git.raw('rev-parse', 'HEAD')).trim()
  }

  async parent(): Promise<string> {
    const roots = (await this.git.raw('rev-list', '--max-parents=0', 'HEAD')).trim().split('\n')
    return roots[roots.length - 1]
  }

  async editableFiles(): Promise<string[]> {
    return (await this.git.raw('ls-tree', '-r', '-z', '--name-only', await this.parent())).split('\0').filter(Boolean)
  }

  private async diffArgs(): Promise<string[]> {
    return ['--no-color', '--no-ext-diff', '--src-prefix=a/', '--dst-prefix=b/', await this.parent(), 'HEAD', '--', ...(await this.editableFiles())]
  }

  async diff(): Promise<string> {
    return this.git.raw('diff', ...(await this.diffArgs()))
  }
}

/**
 * simple-git for a folder whose files other code may have written (an agent's edits, a checkout):
 * every command runs with hooks and fsmonitor switched off on its command line, which wins over
 * whatever `.git/config` says, so a planted hook or `core.fsmonitor` never runs as the worker.
 */
export function gitWithoutHooks(dir: string): SimpleGit {
  // simple-git refuses to set these two unless told: here, switching them off is the point.
  return simpleGit({ baseDir: dir, config: ['core.hooksPath=/dev/null', 'core.fsmonitor=false', 'core.untrackedCache=false'], unsafe: { allowUnsafeHooksPath: true, allowUnsafeFsMonitor: true } })
}

/**
 * Opens (creating if needed) the workspace repository at `dir`. Identity and signing are set
 * locally (and commits skip hooks), so a box with no global git config, or one that signs every
 * commit, works as is.
 */
export async function openWorkspace(dir: string): Promise<Workspace> {
  await mkdir(dir, { recursive: true })
  const git = gitWithoutHooks(dir)
  // Only a repository rooted here counts: a workspace inside someone's checkout must not commit to it.
  if (!(await git.checkIsRepo(CheckRepoActions.IS_REPO_ROOT))) await git.init()
  await git.addConfig('user.name', IDENTITY.name)
  await git.addConfig('user.email', IDENTITY.email)
  await git.addConfig('commit.gpgsign', 'false')
  await git.addConfig('core.autocrlf', 'false')
  return new GitWorkspace(dir, git)
}

import { simpleGit, type SimpleGit } from 'simple-git'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { tmpdir } from 'node:os'

/**
 * Git sees only what it needs from our environment: simple-git refuses variables such as EDITOR
 * that could run programs, and the store's behaviour should not depend on the caller's shell.
 */
function gitEnv(extra: Record<string, string>): Record<string, string> {
  const keep = ['PATH', 'HOME', 'TMPDIR', 'LANG', 'SYSTEMROOT']
  return { ...Object.fromEntries(keep.filter(k => process.env[k]).map(k => [k, process.env[k]!])), GIT_CONFIG_NOSYSTEM: '1', ...extra }
}

export interface Author { name: string; email: string }
export interface CommitInput {
  files: Record<string, string>
  parents: string[]
  message: string
  author: Author
  /** Milliseconds since the epoch; defaults to now. */
  date?: number
}

/**
 * The coordinator's git repository: the truth for code (DESIGN §6). It is bare and written only
 * through plumbing (hash-object, update-index on a private index, write-tree, commit-tree,
 * update-ref with the expected old value), so two merges at once can never trample each other:
 * the loser's update-ref fails and it retries on the new tip.
 */
export class GitStore {
  private constructor(readonly dir: string, private readonly git: SimpleGit) {}

  static async open(dir: string): Promise<GitStore> {
    await mkdir(dir, { recursive: true })
    const git = simpleGit({ baseDir: dir })
    if (!existsSync(join(dir, 'HEAD'))) {
      await git.raw(['init', '--bare', '--initial-branch=main', '.'])
      await git.raw(['config', 'uploadpack.allowReachableSHA1InWant', 'true'])
      await git.raw(['config', 'http.receivepack', 'false'])
    }
    return new GitStore(dir, git)
  }

  /** Writes a commit whose tree holds exactly `files`; returns its sha. Touches no ref. */
  async commit(input: CommitInput): Promise<string> {
    const scratch = await mkdtemp(join(tmpdir(), 'arg-git-'))
    const index = join(scratch, 'index')
    try {
      const git = this.git.env(gitEnv({ GIT_INDEX_FILE: index }))
      for (const [name, text] of Object.entries(input.files).sort(([a], [b]) => a.localeCompare(b))) {
        if (!/^[A-Za-z0-9_.-]+$/.test(name) || name.startsWith('.')) throw new Error(`refusing file name ${JSON.stringify(name)}`)
        const path = join(scratch, 'blob')
        await writeFile(path, text)
        const blob = (await git.raw(['hash-object', '-w', path])).trim()
        await git.raw(['update-index', '--add', '--cacheinfo', `100644,${blob},${name}`])
      }
      const tree = (await git.raw(['write-tree'])).trim()
      const when = `${Math.floor((input.date ?? Date.now()) / 1000)} +0000`
      const who = { GIT_AUTHOR_NAME: input.author.name, GIT_AUTHOR_EMAIL: input.author.email, GIT_AUTHOR_DATE: when,
        GIT_COMMITTER_NAME: 'autoresearch-grid', GIT_COMMITTER_EMAIL: 'coordinator@autoresearch-grid.local', GIT_COMMITTER_DATE: when }
      const parents = input.parents.flatMap(p => ['-p', p])
      return (await this.git.env(gitEnv(who)).raw(['commit-tree', tree, ...parents, '-m', input.message])).trim()
    } finally {
      await rm(scratch, { recursive: true, force: true })
    }
  }

  /** Moves `ref` to `to` only if it still points at `from` (null: only if it does not exist). */
  async compareAndSwap(ref: string, to: string, from: string | null): Promise<boolean> {
    try {
      await this.git.raw(['update-ref', ref, to, from ?? '0'.repeat(40)])
      return true
    } catch {
      return false
    }
  }

  async setRef(ref: string, to: string): Promise<void> {
    await this.git.raw(['update-ref', ref, to])
  }

  async resolve(ref: string): Promise<string | null> {
    try {
      return (await this.git.raw(['rev-parse', '--verify', '--quiet', `${ref}^{commit}`])).trim() || null
    } catch {
      return null
    }
  }

  async readFile(commit: string, name: string): Promise<string> {
    return this.git.raw(['cat-file', 'blob', `${commit}:${name}`])
  }

  async readFiles(commit: string, names: string[]): Promise<Record<string, string>> {
    const out: Record<string, string> = {}
    for (const n of names) out[n] = await this.readFile(commit, n)
    return out
  }

  /** Commits reachable from `ref`, newest first, with author and subject. */
  async log(ref: string, max = 100): Promise<{ commit: string; author: string; email: string; subject: string }[]> {
    const raw = await this.git.raw(['log', `--max-count=${max}`, '--format=%H%x1f%an%x1f%ae%x1f%s', ref])
    return raw.split('\n').filter(Boolean).map(line => {
      const [commit, author, email, subject] = line.split('\x1f')
      return { commit, author, email, subject }
    })
  }

  /** Lines added minus lines deleted between two commits. */
  async linesDelta(from: string, to: string): Promise<number> {
    const numstat = await this.git.raw(['diff', '--numstat', from, to])
    return numstat.split('\n').filter(Boolean).reduce((n, line) => {
      const [added, removed] = line.split('\t')
      return n + (Number(added) || 0) - (Number(removed) || 0)
    }, 0)
  }

  /**
   * Three-way merge of two commits over their merge base, without a work tree (git merge-tree).
   * Returns the merged files' tree as a commit-ready file map, or null on a conflict.
   */
  async mergeFiles(ours: string, theirs: string, names: string[]): Promise<Record<string, string> | null> {
    let output: string
    try {
      output = await this.git.raw(['merge-tree', '--write-tree', '--no-messages', ours, theirs])
    } catch {
      return null
    }
    // A clean merge prints just the tree; a conflict also lists the conflicted entries.
    const [tree, ...conflicts] = output.trim().split('\n')
    if (conflicts.some(l => l.trim()) || !/^[0-9a-f]{40,64}$/.test(tree)) return null
    const out: Record<string, string> = {}
    for (const n of names) out[n] = await this.git.raw(['cat-file', 'blob', `${tree}:${n}`])
    return out
  }

  async diff(from: string, to: string): Promise<string> {
    return this.git.raw(['diff', from, to])
  }
}

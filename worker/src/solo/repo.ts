import { existsSync } from 'node:fs'
import { appendFile, copyFile, mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { CheckRepoActions, type SimpleGit } from 'simple-git'
import { RESULTS_TSV_HEADER } from '@autoresearch-grid/shared'
import { gitWithoutHooks } from '../workspace/git.ts'

/**
 * The research repository of `worker solo`: a git repo whose branch `autoresearch/<tag>` only ever
 * advances to improvements (discarded experiments stay reachable under
 * `refs/autoresearch/<tag>/tried/<n>`), with `results.tsv` next to it, untracked.
 */
export class ResearchRepo {
  private constructor(readonly dir: string, readonly branch: string, private readonly git: SimpleGit, readonly tag: string) {}

  static async open(dir: string, tag: string, trainerDir: string): Promise<ResearchRepo> {
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(tag)) throw new Error(`tag "${tag}" must be letters, digits, dots, dashes or underscores (it becomes the branch autoresearch/${tag})`)
    await mkdir(dir, { recursive: true })
    const git = gitWithoutHooks(dir)
    if (!(await git.checkIsRepo(CheckRepoActions.IS_REPO_ROOT))) await git.init()
    // A box with no global identity still commits; a configured one keeps its own.
    if (!(await git.raw('config', '--get', 'user.email').catch(() => '')).trim()) {
      await git.addConfig('user.name', 'autoresearch-grid solo')
      await git.addConfig('user.email', 'solo@autoresearch-grid.invalid')
    }
    await git.addConfig('commit.gpgsign', 'false')
    const exclude = join(dir, '.git', 'info', 'exclude')
    const excluded = existsSync(exclude) ? await readFile(exclude, 'utf8') : ''
    const add = ['results.tsv', '.autoresearch-grid/'].filter(p => !excluded.split('\n').includes(p))
    if (add.length) {
      await mkdir(join(dir, '.git', 'info'), { recursive: true })
      await appendFile(exclude, `${excluded && !excluded.endsWith('\n') ? '\n' : ''}${add.join('\n')}\n`)
    }
    const hasHead = (await git.raw('rev-parse', '--verify', '--quiet', 'HEAD').catch(() => '')).trim() !== ''
    if (!existsSync(join(dir, 'train.py'))) {
      for (const f of ['train.py', 'prepare.py']) await copyFile(join(trainerDir, f), join(dir, f))
      if (existsSync(join(trainerDir, '..', 'program.md')) && !existsSync(join(dir, 'program.md'))) await copyFile(join(trainerDir, '..', 'program.md'), join(dir, 'program.md'))
      await git.raw('add', '--', ...['train.py', 'prepare.py', 'program.md'].filter(f => existsSync(join(dir, f))))
      await git.raw('commit', '--no-verify', '--quiet', '-m', 'autoresearch: starting point (train.py and prepare.py from the trainer)')
    } else if (!hasHead) {
      await git.raw('add', '--', 'train.py')
      await git.raw('commit', '--no-verify', '--quiet', '-m', 'autoresearch: starting point')
    }
    const status = await git.raw('status', '--porcelain', '--', 'train.py')
    if (status.trim()) throw new Error(`train.py in ${dir} has uncommitted changes; commit or stash them first (solo resets train.py to the best after each discarded experiment)`)
    const branch = `autoresearch/${tag}`
    const exists = (await git.raw('rev-parse', '--verify', '--quiet', `refs/heads/${branch}`).catch(() => '')).trim() !== ''
    await git.raw('checkout', '--quiet', ...(exists ? [branch] : ['-b', branch]))
    if (!existsSync(join(dir, 'results.tsv'))) await writeFile(join(dir, 'results.tsv'), `${RESULTS_TSV_HEADER}\n`)
    return new ResearchRepo(dir, branch, git, tag)
  }

  async head(): Promise<string> {
    return (await this.git.raw('rev-parse', 'HEAD')).trim()
  }

  async trainPy(): Promise<string> {
    return readFile(join(this.dir, 'train.py'), 'utf8')
  }

  async results(): Promise<string> {
    return readFile(join(this.dir, 'results.tsv'), 'utf8')
  }

  async appendResult(row: string): Promise<void> {
    await appendFile(join(this.dir, 'results.tsv'), `${row}\n`)
  }

  /** Commits a candidate's train.py on the branch; returns the commit. */
  async commit(source: string, message: string): Promise<string> {
    await writeFile(join(this.dir, 'train.py'), source)
    await this.git.raw('add', '--', 'train.py')
    await this.git.raw('commit', '--allow-empty', '--no-verify', '--quiet', '-m', message.trim() || 'experiment')
    return this.head()
  }

  /** Moves the branch back to the best, keeping the discarded commit reachable. */
  async discard(commit: string, best: string, n: number): Promise<void> {
    await this.git.raw('update-ref', `refs/autoresearch/${this.tag}/tried/${n}`, commit)
    await this.git.raw('reset', '--quiet', '--hard', best)
  }
}

import { simpleGit, type SimpleGit } from 'simple-git'
import { mkdir, rm } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { catFileObject, GitPipe, lines, upTo } from './pipe.ts'
import { LooseObjects, treeBody, type ObjectFormat, type ObjectType } from './objects.ts'
import { PackedObjects, type PackEntry } from './pack.ts'
import { LooseRefs, removeStaleLocks } from './loose-refs.ts'
import { RefBatch } from './ref-batch.ts'

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
 * What git makes of a name or email in an ident line (ident.c, `strbuf_addstr_without_crud`):
 * "crud" is trimmed from both ends, and the delimiters `<`, `>` and newlines are dropped inside.
 */
export function identPart(s: string): string {
  const crud = (c: string) => c.charCodeAt(0) <= 32 || '.,:;<>"\\\''.includes(c)
  let a = 0
  let b = s.length
  while (a < b && crud(s[a])) a++
  while (b > a && crud(s[b - 1])) b--
  return s.slice(a, b).replace(/[<>\n]/g, '')
}

/** The author git records when a contributor's name or email leaves nothing git can use. */
export const FALLBACK_AUTHOR: Author = { name: 'unnamed contributor', email: 'unnamed@contributors.autoresearch-grid.local' }

/**
 * The author a commit records for a contributor: what git makes of the name and email (identPart,
 * so commits stay byte for byte what `git commit-tree` writes), and FALLBACK_AUTHOR's where nothing
 * is left. Names are display names, stored verbatim in the database, and may be anything printable
 * (`<>`, `...`, `'`): git would refuse such a name as empty, and every report of that contributor
 * failed with it.
 */
export function gitAuthor(a: Author): Author {
  return { name: identPart(a.name) || FALLBACK_AUTHOR.name, email: identPart(a.email) || FALLBACK_AUTHOR.email }
}

/** A commit or tree id; anything else is refused before it reaches a git command line or pipe. */
const OBJECT_ID = /^[0-9a-f]{40,64}$/
const FILE_NAME = /^[A-Za-z0-9_.-]+$/

/**
 * How long a ref moved by `setRefSoon` may wait for others to be written with it (git/ref-batch.ts):
 * short enough that a person looking finds it, long enough that a busy coordinator writes dozens at once.
 */
const REF_WINDOW_MS = 50

/**
 * How long objects asked for wait for others to share their pack (git/pack.ts). Creating a file
 * costs ~0.55 ms of kernel time on this VM; with reports arriving at random, 400 a second, a 2 ms
 * window wrote 0.65 packs a report instead of one per report (one turn of the event loop), 0.5 ms
 * less CPU a report, for 0.2 ms more median latency (1.9 ms at 100 a second): docs/PERFORMANCE.md,
 * "Eighth pass". A report's answer waits for the database's fdatasync as well.
 */
const PACK_WINDOW_MS = 2

export interface GitStoreOptions {
  /**
   * How objects are written: `loose` (the default here), three files a report, on the event loop
   * (git/objects.ts); `packs`, a pack per 2 ms window written by libuv's threads and repacked in the
   * background (git/pack.ts), each commit awaiting its pack (docs/PERFORMANCE.md, "Eighth pass": no
   * better in the median); `staged` (the coordinator's, since session 19), the same packs over a 200 ms
   * window that no commit waits for, the objects kept in the coordinator's database meanwhile
   * (`stage`): a report creates no file, and the refs and readers that need an object wait for its
   * pack (docs/PERFORMANCE.md, "Thirteenth pass").
   */
  objects?: 'loose' | 'packs' | 'staged'
  /**
   * With `objects: 'staged'`, where a commit's objects are kept until their pack is in place: the
   * coordinator's database (db/object-stage.ts), so they are on disk with the transaction that
   * names them.
   */
  stage?: ObjectStage
}

/**
 * Objects kept durably until their pack is in place (`objects: 'staged'`). `put` writes them in the
 * caller's database before the report's transaction, whose sync makes both durable; `drop` forgets
 * those a pack now holds; `all`, at start, gives back what a crash left unwritten.
 */
export interface ObjectStage {
  put(objects: PackEntry[]): void
  all(): PackEntry[]
  drop(ids: string[]): void
}

/**
 * How long staged objects wait for others to share their pack. Nothing waits for them but the
 * experiment refs (already batched, nothing reads them at once) and readers, which start the pack
 * at once: so the window is long, and at 30-500 reports a second a pack holds 6-100 reports'
 * objects instead of three files a report (docs/PERFORMANCE.md, "Thirteenth pass").
 */
const STAGED_WINDOW_MS = 200

/** Packs this store writes before a `git repack --geometric=2` rolls them up in the background. */
const REPACK_AFTER = 50

/** A ref move's two halves as git would take them: a name without white space, an object id. */
function checkRefUpdate(ref: string, to: string): void {
  if (/\s/.test(ref) || !OBJECT_ID.test(to)) throw new Error(`bad ref update ${JSON.stringify(ref)} -> ${JSON.stringify(to)}`)
}

function objectId(id: string): string {
  if (!OBJECT_ID.test(id)) throw new Error(`not a git object id: ${JSON.stringify(id)}`)
  return id
}

/**
 * The coordinator's git repository: the truth for code (DESIGN §6). It is bare and written only
 * through plumbing (objects are content-addressed, so writers never share a work tree). Which
 * commit is a campaign's best is decided in the database, not here: a merge moves
 * `campaigns.best_commit` in a transaction that first checks the best is still its parent
 * (units/merge.ts), then `setRef` makes the branch follow, unconditionally; after a crash,
 * syncBranches brings the refs in line. Only program.md's history ref moves by compare-and-swap
 * (`compareAndSwap`, campaigns/program.ts: of two maintainers saving at once, the loser builds on
 * the winner's version). What a report or a merge needs goes through this process or
 * long-running plumbing processes (git/pipe.ts), never a git started per call: blobs, trees and
 * commits are written here (a commit is the text `commit-tree` would write): as loose objects
 * (git/objects.ts), or packs (git/pack.ts) per 2 ms window (`objects: 'packs'`) or per 200 ms
 * window, staged in the database meanwhile (`objects: 'staged'`, the coordinator's); file contents come from `cat-file --batch`,
 * diffs from `diff-tree --stdin` (a report's own patch is made without git: git/patch.ts), refs written here as loose refs (git/loose-refs.ts) or, for
 * the rest, through `update-ref --stdin`, and three-way merges from
 * `merge-tree --write-tree` run by a shell loop (git 2.39's `merge-tree --stdin` answers only at
 * the end of its input). Rare questions (log, resolve, compare-and-swap) use simple-git.
 */
export class GitStore {
  private readonly pipes: Record<'objects' | 'diffs' | 'refs' | 'merges', GitPipe>
  private readonly loose: LooseObjects
  /** Null unless the store was opened with `objects: 'packs'` or `'staged'`. */
  private readonly packs: PackedObjects | null
  /** Null unless `objects: 'staged'`. */
  private readonly stage: ObjectStage | null
  /** The files of staged commits whose pack is not in place yet (staged), so reading them waits for nothing. */
  private readonly stagedFiles = new Map<string, Record<string, Buffer>>()
  /** Null where git keeps refs in a reftable, not in files. */
  private readonly looseRefs: LooseRefs | null
  /** Ends each answer of diff-tree and of the merge loop; random, so no file content can forge it. */
  private readonly mark = `arg-${randomBytes(12).toString('hex')}:`
  /** A parentless commit (made on first use): asked after each diff, its header ends that answer. */
  private endOfDiff: Promise<string> | null = null
  /** Refs moved by `setRefSoon`, written together by update-ref. */
  private readonly refBatch: RefBatch
  /** Set by `close`: a batch of refs still waiting for its objects is left to restoreExperimentRefs. */
  private closed = false

  private constructor(readonly dir: string, private readonly git: SimpleGit, format: ObjectFormat, options: GitStoreOptions) {
    const env = gitEnv({})
    const git_ = (...args: string[]) => new GitPipe(dir, 'git', args, env)
    this.loose = new LooseObjects(dir, format)
    if (options.objects === 'staged' && !options.stage) throw new Error('staged objects need a stage to keep them in')
    this.stage = options.objects === 'staged' ? options.stage! : null
    const stage = this.stage
    this.packs = options.objects === 'packs' ? new PackedObjects(dir, format, { windowMs: PACK_WINDOW_MS, repackAfter: REPACK_AFTER, env })
      : stage ? new PackedObjects(dir, format, { windowMs: STAGED_WINDOW_MS, repackAfter: REPACK_AFTER, env, retry: true, syncWrites: true, onWritten: ids => stage.drop(ids) })
      : null
    this.looseRefs = existsSync(join(dir, 'reftable')) ? null : new LooseRefs(dir, id => this.packs?.has(id) ?? false)
    this.pipes = {
      objects: git_('cat-file', '--batch'),
      diffs: git_('diff-tree', '--stdin', '-p', '--always', `--format=${this.mark}%H`),
      refs: git_('update-ref', '--stdin'),
      // Reads "<ours> <theirs>" lines (object ids, checked before they are sent) and prints git's
      // answer, then the mark and git's exit status. The shell forks git, not the coordinator.
      merges: new GitPipe(dir, 'sh', ['-c', 'while read -r ours theirs; do git merge-tree --write-tree --no-messages "$ours" "$theirs"; printf "%s%s\\n" "$0" "$?"; done', this.mark], env),
    }
    // A batch that git refuses (a ref locked by another git process makes the whole transaction
    // fail) is retried ref by ref; what still fails waits for restoreExperimentRefs at the next start.
    // A ref names an object in place: staged objects' pack may still be due.
    this.refBatch = new RefBatch(async updates => {
      await this.inPlace(updates.map(u => u[1]), false)
      if (!this.closed) await this.updateRefs(updates)
    }, REF_WINDOW_MS, async (_err, updates) => {
      for (const [ref, to] of updates) {
        if (this.closed) return
        await this.setRef(ref, to).catch((err: Error) => console.error(`git store: ${ref} not written (${err.message}); it is restored at the next start`))
      }
    })
  }

  static async open(dir: string, options: GitStoreOptions = {}): Promise<GitStore> {
    await mkdir(dir, { recursive: true })
    const git = simpleGit({ baseDir: dir })
    if (!existsSync(join(dir, 'HEAD'))) {
      await git.raw(['init', '--bare', '--initial-branch=main', '.'])
      await git.raw(['config', 'uploadpack.allowReachableSHA1InWant', 'true'])
      await git.raw(['config', 'http.receivepack', 'false'])
    }
    const format = (await git.raw(['rev-parse', '--show-object-format'])).trim()
    if (format !== 'sha1' && format !== 'sha256') throw new Error(`git repository ${dir} uses object format "${format}", which this store cannot write`)
    // Scratch files of earlier versions, which handed objects to hash-object through them.
    await rm(join(dir, 'arg-scratch'), { recursive: true, force: true })
    for (const lock of await removeStaleLocks(dir)) console.error(`git store: removed ${lock}, left by a process that crashed while moving a ref`)
    const store = new GitStore(dir, git, format, options)
    await store.unstage()
    return store
  }

  /** Writes what the stage kept from a process that ended before their pack was in place. */
  private async unstage(): Promise<void> {
    if (!this.stage || !this.packs) return
    const kept = this.stage.all()
    for (const e of kept) {
      const { id } = this.packs.add(e.type, e.body)
      // A row that is not what it names (a damaged database) is dropped, not written under a false name.
      if (id !== e.id) {
        console.error(`git store: staged object ${e.id} does not hash to its id; dropped`)
        this.stage.drop([e.id])
      }
    }
    if (kept.length) await this.packs.flushNow()
  }

  /**
   * Resolves once these objects are in place: at once unless one is in a pack still due (staged or
   * packed objects), whose writing starts now unless `now` is false (the refs, which can wait for
   * the window to end).
   */
  private async inPlace(ids: string[], now = true): Promise<void> {
    const packs = this.packs
    if (!packs?.pending) return
    const due = ids.map(id => packs.due(id)).filter(p => p !== null)
    if (!due.length) return
    if (now) await packs.flushNow()
    await Promise.all(due)
  }

  /**
   * Ends the long-running git processes (they do not keep the process alive meanwhile), after the
   * refs still waiting in the batch are handed to them or written here (a batch already sent is
   * read by update-ref before the end of its input). A ref lost anyway is restored at start.
   */
  close(): Promise<void> {
    this.closed = true
    const waiting = this.refBatch.take()
    const toGit = waiting.filter(([ref, to]) => {
      if (!this.looseRefs?.canWrite(ref, to)) return true
      try {
        this.looseRefs.write(ref, to)
      } catch {
        return true
      }
      return false
    })
    if (toGit.length) this.updateRefs(toGit).catch(() => {})
    for (const p of Object.values(this.pipes)) p.close()
    // Staged objects not in a pack yet stay in the stage: written at the next start.
    this.packs?.close()
    // What is already on its way (a pack's files, a ref batch) ends soon: a caller that removes the
    // repository next waits for it.
    return Promise.allSettled([this.packs?.settled(), this.refBatch.flush()]).then(() => {})
  }

  /**
   * Writes a commit whose tree holds exactly `files`; returns its sha once it is in place (git can
   * read it). Touches no ref. With `staged: true` and a staged store, it returns as soon as the
   * objects are in the stage, for a caller whose next transaction makes them durable (a report): git
   * has them within the window, and whatever names them waits for that (refs, readers).
   */
  async commit(input: CommitInput, { staged = false }: { staged?: boolean } = {}): Promise<string> {
    const names = Object.keys(input.files).sort()
    for (const name of names) if (!FILE_NAME.test(name) || name.startsWith('.')) throw new Error(`refusing file name ${JSON.stringify(name)}`)
    input.parents.forEach(objectId)
    // Exactly what `git commit-tree -m` writes (a message ends with a newline), with an author git
    // accepts whatever the contributor is called (gitAuthor).
    const when = `${Math.floor((input.date ?? Date.now()) / 1000)} +0000`
    const author = gitAuthor(input.author)
    const message = input.message.endsWith('\n') ? input.message : `${input.message}\n`
    const text = (tree: string) => `tree ${tree}\n${input.parents.map(p => `parent ${p}\n`).join('')}author ${author.name} <${author.email}> ${when}\n` +
      `committer autoresearch-grid <coordinator@autoresearch-grid.local> ${when}\n\n${message}`
    if (!this.packs) return this.loose.commit(text(this.loose.tree(names.map(name => ({ name, id: this.loose.blob(input.files[name]) })))))
    const packs = this.packs
    const add = (type: ObjectType, body: Buffer) => ({ ...packs.add(type, body), type, body })
    const blobs = names.map(name => add('blob', Buffer.from(input.files[name])))
    const tree = add('tree', treeBody(names.map((name, i) => ({ name, id: blobs[i].id }))))
    const commit = add('commit', Buffer.from(text(tree.id)))
    const added = [...blobs, tree, commit]
    if (this.stage) {
      // Durable with the caller's next transaction; in a pack within the window. Until then its
      // files are read from here, and anything that names it (a ref, git) waits for its pack.
      this.stage.put(added.filter(o => o.queued).map(({ id, type, body }) => ({ id, type, body })))
      if (commit.queued) {
        // The bytes stored, read back as git's would be (a lone surrogate comes back as U+FFFD).
        this.stagedFiles.set(commit.id, Object.fromEntries(names.map((name, i) => [name, blobs[i].body])))
        void commit.written.then(() => this.stagedFiles.delete(commit.id))
      }
      if (!staged) await this.inPlace([commit.id])
      return commit.id
    }
    // Written in the pack of this window (or one already on its way): in place when this resolves.
    await Promise.all(added.map(o => o.written))
    return commit.id
  }

  /** Resolves when every object asked for is in place and no repack is running (tests, benchmarks). */
  async idle(): Promise<void> {
    await this.packs?.idle()
  }

  /** Packs written and repacks ended since this store was opened, and whether one runs now. */
  packStats(): { packsWritten: number; repacks: number; repacking: boolean } {
    return { packsWritten: this.packs?.packsWritten ?? 0, repacks: this.packs?.repacks ?? 0, repacking: this.packs?.repacking ?? false }
  }

  /**
   * The diff of a commit against its parent (or the given one, for a merge), as `git diff parent
   * commit` prints it; for a root commit, empty. One long-running diff-tree answers all of them.
   */
  async changes(commit: string, parent?: string): Promise<string> {
    this.endOfDiff ??= this.commit({ files: {}, parents: [], message: 'end of diff', author: { name: 'autoresearch-grid', email: 'coordinator@autoresearch-grid.local' }, date: 0 })
      .catch(err => { this.endOfDiff = null; throw err })
    const end = await this.endOfDiff
    await this.inPlace(parent ? [commit, parent, end] : [commit, end])
    const head = `${this.mark}${commit}\n`
    const answer = upTo(`${this.mark}${end}\n`)
    const question = parent ? `${objectId(commit)} ${objectId(parent)}\n` : `${objectId(commit)}\n`
    const out = await this.pipes.diffs.request(`${question}${end}\n`, answer)
    // The answer is the header, a blank line, then the patch (nothing when the trees are equal).
    return (out.startsWith(head) ? out.slice(head.length) : out).replace(/^\n/, '')
  }

  /** Moves `ref` to `to` only if it still points at `from` (null: only if it does not exist). */
  async compareAndSwap(ref: string, to: string, from: string | null): Promise<boolean> {
    await this.inPlace([to])
    try {
      await this.git.raw(['update-ref', ref, to, from ?? '0'.repeat(40)])
      return true
    } catch {
      return false
    }
  }

  /**
   * Moves `ref` to `to`, unconditionally: written here (git/loose-refs.ts) when the name is plain
   * and the object is a loose one (or in a pack this store wrote) (branches, refs restored at start); by the
   * long-running update-ref otherwise. Experiment refs go through `setRefSoon`.
   */
  async setRef(ref: string, to: string): Promise<void> {
    checkRefUpdate(ref, to)
    await this.inPlace([to])
    if (this.looseRefs?.canWrite(ref, to)) return this.looseRefs.write(ref, to)
    await this.updateRefs([[ref, to]])
  }

  /**
   * Moves `ref` to `to` within a moment, together with the other refs moved so (git/ref-batch.ts):
   * for refs that nothing reads at once and that are restored at start if a crash loses them, every
   * `refs/experiments/<id>`. `flushRefs` writes them now.
   */
  setRefSoon(ref: string, to: string): void {
    checkRefUpdate(ref, to)
    if (!ref.startsWith('refs/')) throw new Error(`bad ref update ${JSON.stringify(ref)} -> ${JSON.stringify(to)}`)
    this.refBatch.add(ref, to)
  }

  /** Writes the refs `setRefSoon` gathered; resolves once they (and any batch in flight) are written. */
  flushRefs(): Promise<void> {
    return this.refBatch.flush()
  }

  /** Moves refs in one update-ref transaction: all of them, or none. */
  private async updateRefs(updates: [string, string][]): Promise<void> {
    await this.pipes.refs.request(`start\n${updates.map(([ref, to]) => `update ${ref} ${to}\n`).join('')}prepare\ncommit\n`, lines(3))
  }

  async deleteRef(ref: string): Promise<void> {
    if (/\s/.test(ref)) throw new Error(`bad ref ${JSON.stringify(ref)}`)
    await this.pipes.refs.request(`start\ndelete ${ref}\nprepare\ncommit\n`, lines(3))
  }

  /** The refs under a prefix (e.g. `refs/experiments/`), each with the object it names. */
  async refs(prefix: string): Promise<Map<string, string>> {
    if (/\s/.test(prefix) || !prefix.startsWith('refs/')) throw new Error(`bad ref prefix ${JSON.stringify(prefix)}`)
    const out = await this.git.raw(['for-each-ref', '--format=%(objectname) %(refname)', prefix])
    return new Map(out.split('\n').filter(Boolean).map(line => [line.slice(line.indexOf(' ') + 1), line.slice(0, line.indexOf(' '))]))
  }

  async resolve(ref: string): Promise<string | null> {
    try {
      return (await this.git.raw(['rev-parse', '--verify', '--quiet', `${ref}^{commit}`])).trim() || null
    } catch {
      return null
    }
  }

  async readFile(commit: string, name: string): Promise<string> {
    if (!FILE_NAME.test(name)) throw new Error(`refusing file name ${JSON.stringify(name)}`)
    const staged = this.stagedFiles.get(commit)
    if (staged && Object.hasOwn(staged, name)) return staged[name].toString('utf8')
    await this.inPlace([commit])
    return this.pipes.objects.request(`${objectId(commit)}:${name}\n`, catFileObject(`${name} in ${commit}`))
  }

  async readFiles(commit: string, names: string[]): Promise<Record<string, string>> {
    const texts = await Promise.all(names.map(n => this.readFile(commit, n)))
    return Object.fromEntries(names.map((n, i) => [n, texts[i]]))
  }

  /** Commits reachable from `ref`, newest first, with author, author date (ms) and subject. */
  async log(ref: string, max = 100): Promise<{ commit: string; author: string; email: string; subject: string; date: number }[]> {
    const raw = await this.git.raw(['log', `--max-count=${max}`, '--format=%H%x1f%an%x1f%ae%x1f%at%x1f%s', ref])
    return raw.split('\n').filter(Boolean).map(line => {
      const [commit, author, email, at, subject] = line.split('\x1f')
      return { commit, author, email, subject, date: Number(at) * 1000 }
    })
  }

  /**
   * Three-way merge of two commits over their merge base, without a work tree (git merge-tree).
   * Returns the merged files' tree as a commit-ready file map, or null on a conflict.
   */
  async mergeFiles(ours: string, theirs: string, names: string[]): Promise<Record<string, string> | null> {
    await this.inPlace([ours, theirs])
    const out = await this.pipes.merges.request(`${objectId(ours)} ${objectId(theirs)}\n`, out => {
      const at = out.indexOf(this.mark)
      const nl = at < 0 ? -1 : out.indexOf(10, at)
      if (nl < 0) return null
      return { value: { output: out.toString('utf8', 0, at), status: out.toString('utf8', at + this.mark.length, nl) }, used: nl + 1 }
    })
    // A clean merge prints just the tree and exits 0; a conflict also lists the conflicted entries.
    const [tree, ...conflicts] = out.output.trim().split('\n')
    if (out.status !== '0' || conflicts.some(l => l.trim()) || !OBJECT_ID.test(tree)) return null
    return this.readFiles(tree, names)
  }

  async diff(from: string, to: string): Promise<string> {
    await this.inPlace([from, to])
    return this.git.raw(['diff', from, to])
  }
}

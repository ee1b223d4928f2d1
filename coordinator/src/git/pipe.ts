import { execa, type ResultPromise } from 'execa'

/**
 * How to read one answer off the front of a pipe's output: its value (or the error it means) and
 * how many bytes it took, or null if it is not all there yet.
 */
export type Answer<T> = (out: Buffer) => { value: T; used: number } | { error: Error; used: number } | null

interface Waiting { answer: Answer<unknown>; resolve: (v: unknown) => void; reject: (e: Error) => void }
interface Running { proc: ResultPromise; out: Buffer; stderr: string; waiting: Waiting[] }

/**
 * A long-running git process that takes requests on stdin and answers each on stdout, in order
 * (`hash-object --stdin-paths`, `mktree --batch`, `cat-file --batch`, `diff-tree --stdin`,
 * `update-ref --stdin`, and a shell loop around `merge-tree`). Starting a process costs the
 * coordinator's event loop a fork of itself: 6 ms on the benchmark's VM at 100 MB, 18 ms at 300 MB
 * (docs/PERFORMANCE.md, "Coordinator under load"); several per report capped ingestion at a few
 * dozen reports a second. A pipe is started once and costs nothing per request. If its process
 * exits (a fatal error), the requests waiting on it fail and the next request starts a fresh one.
 */
export class GitPipe {
  private running: Running | null = null

  constructor(private readonly dir: string, private readonly command: string, private readonly args: string[], private readonly env: Record<string, string>) {}

  request<T>(input: string, answer: Answer<T>): Promise<T> {
    const r = this.running ?? this.start()
    return new Promise<T>((resolve, reject) => {
      if (!r.waiting.length) hold(r, true)
      r.waiting.push({ answer, resolve: resolve as (v: unknown) => void, reject })
      r.proc.stdin!.write(input)
    })
  }

  /** Ends the process once it has answered what it was asked. */
  close(): void {
    this.running?.proc.stdin?.end()
    this.running = null
  }

  private start(): Running {
    const proc = execa(this.command, this.args, { cwd: this.dir, env: this.env, extendEnv: false, buffer: false, stdin: 'pipe', stdout: 'pipe', stderr: 'pipe' })
    const r: Running = { proc, out: Buffer.alloc(0), stderr: '', waiting: [] }
    this.running = r
    hold(r, false)
    proc.stdout!.on('data', (chunk: Buffer) => {
      r.out = r.out.length ? Buffer.concat([r.out, chunk]) : chunk
      for (let w = r.waiting[0]; w; w = r.waiting[0]) {
        const got = w.answer(r.out)
        if (!got) break
        r.out = r.out.subarray(got.used)
        r.waiting.shift()
        if ('error' in got) w.reject(got.error)
        else w.resolve(got.value)
      }
      if (!r.waiting.length) hold(r, false)
    })
    proc.stderr!.on('data', (chunk: Buffer) => { r.stderr = (r.stderr + chunk.toString()).slice(-2000) })
    // stdin errors (EPIPE after the process died) surface through the exit below.
    proc.stdin!.on('error', () => {})
    const ended = (how: string) => {
      if (this.running === r) this.running = null
      const error = new Error(`${this.command} ${this.args[0]} ${how}: ${r.stderr.trim() || 'no message'}`)
      for (const w of r.waiting.splice(0)) w.reject(error)
    }
    proc.then(() => ended('exited'), (err: Error & { exitCode?: number }) => ended(`failed (exit ${err.exitCode ?? err.message})`))
    return r
  }
}

/** An idle pipe does not keep the coordinator's process alive; one with a question open does. */
function hold(r: Running, yes: boolean): void {
  for (const h of [r.proc, r.proc.stdin, r.proc.stdout, r.proc.stderr] as ({ ref(): void; unref(): void } | null)[]) {
    if (yes) h?.ref()
    else h?.unref()
  }
}

/** An answer of exactly `n` lines; the value is the lines without their newlines. */
export function lines(n: number): Answer<string[]> {
  return out => {
    let at = 0
    const got: string[] = []
    while (got.length < n) {
      const nl = out.indexOf(10, at)
      if (nl < 0) return null
      got.push(out.toString('utf8', at, nl))
      at = nl + 1
    }
    return { value: got, used: at }
  }
}

/** An answer that ends with `mark` (which must not occur in it); the value is what came before. */
export function upTo(mark: string): Answer<string> {
  return out => {
    const at = out.indexOf(mark)
    return at < 0 ? null : { value: out.toString('utf8', 0, at), used: at + Buffer.byteLength(mark) }
  }
}

/** One object from `cat-file --batch`: `<id> <type> <size>\n<content>\n`, or `<name> missing\n`. */
export function catFileObject(name: string): Answer<string> {
  return out => {
    const nl = out.indexOf(10)
    if (nl < 0) return null
    const header = out.toString('utf8', 0, nl)
    const m = /^[0-9a-f]+ \S+ (\d+)$/.exec(header)
    if (!m) return { error: new Error(`git has no ${name} (${header})`), used: nl + 1 }
    const end = nl + 1 + Number(m[1])
    if (out.length < end + 1) return null
    return { value: out.toString('utf8', nl + 1, end), used: end + 1 }
  }
}

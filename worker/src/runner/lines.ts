/**
 * Splits a stream of text into lines. A carriage return without a newline ends a *transient* line:
 * trainers redraw their progress line with `\r`, and each redraw is a progress update worth
 * reporting but not worth keeping in the log.
 *
 * The stream is a stranger's train.py (or its model server, through the evaluator), so a line is
 * cut at `maxChars` and the rest of it dropped up to its end: a train.py that printed 100 MB with no
 * newline made the worker hold all of it and scan it again for every 64 KiB chunk (8 MiB took 3 s
 * of the event loop, 128 MiB some 13 minutes, every lane and the coordinator's connection frozen).
 * Each chunk is now scanned once, and at most `maxChars` characters are held.
 */
export interface Line {
  text: string
  /** Ended by a lone `\r`: the next line replaces it on a terminal. */
  transient: boolean
}

/** Longer than any log tail the worker keeps (LIMITS.logTailBytes, 16 KiB). */
export const MAX_LINE_CHARS = 64 * 1024

export class LineSplitter {
  private pending = ''
  /** Characters of the current line dropped past `maxChars`. */
  private dropped = 0
  /** The last chunk ended with `\r`: the first half of `\r\n`, or a transient line's end. */
  private heldCr = false

  constructor(private readonly maxChars = MAX_LINE_CHARS) {}

  /** Feeds a chunk, returns the lines it completed. */
  push(chunk: string): Line[] {
    const out: Line[] = []
    let i = 0
    if (this.heldCr && chunk.length > 0) {
      this.heldCr = false
      if (chunk.charCodeAt(0) === 10) i = 1
      this.emit(out, i === 0)
    }
    let start = i
    for (; i < chunk.length; i++) {
      const c = chunk.charCodeAt(i)
      if (c === 10) {
        this.add(chunk.slice(start, i))
        this.emit(out, false)
        start = i + 1
      } else if (c === 13) {
        this.add(chunk.slice(start, i))
        start = i + 1
        // A `\r` at the very end may be the first half of `\r\n`: wait for the next chunk.
        if (i === chunk.length - 1) {
          this.heldCr = true
        } else if (chunk.charCodeAt(i + 1) === 10) {
          this.emit(out, false)
          i++
          start = i + 1
        } else {
          this.emit(out, true)
        }
      }
    }
    if (start < chunk.length) this.add(chunk.slice(start))
    return out
  }

  /** Flushes what is left when the stream ends. */
  end(): Line[] {
    const out: Line[] = []
    if (this.pending !== '' || this.dropped > 0) this.emit(out, this.heldCr)
    this.pending = ''
    this.dropped = 0
    this.heldCr = false
    return out
  }

  private add(part: string): void {
    if (part === '') return
    const room = this.maxChars - this.pending.length
    if (this.dropped > 0 || part.length > room) {
      if (room > 0) this.pending += part.slice(0, room)
      this.dropped += part.length - Math.max(0, room)
      return
    }
    this.pending += part
  }

  private emit(out: Line[], transient: boolean): void {
    const text = this.dropped > 0 ? `${this.pending} [… ${this.dropped} more characters of this line cut]` : this.pending
    out.push({ text, transient })
    this.pending = ''
    this.dropped = 0
  }
}

/**
 * Splits a stream of text into lines. A carriage return without a newline ends a *transient* line:
 * trainers redraw their progress line with `\r`, and each redraw is a progress update worth
 * reporting but not worth keeping in the log.
 */
export interface Line {
  text: string
  /** Ended by a lone `\r`: the next line replaces it on a terminal. */
  transient: boolean
}

export class LineSplitter {
  private pending = ''

  /** Feeds a chunk, returns the lines it completed. */
  push(chunk: string): Line[] {
    const text = this.pending + chunk
    const out: Line[] = []
    let start = 0
    for (let i = 0; i < text.length; i++) {
      const c = text[i]
      if (c === '\n') {
        out.push({ text: text.slice(start, i), transient: false })
        start = i + 1
      } else if (c === '\r') {
        // A `\r` at the very end may be the first half of `\r\n`: wait for the next chunk.
        if (i === text.length - 1) break
        if (text[i + 1] === '\n') {
          out.push({ text: text.slice(start, i), transient: false })
          i++
        } else {
          out.push({ text: text.slice(start, i), transient: true })
        }
        start = i + 1
      }
    }
    this.pending = text.slice(start)
    return out
  }

  /** Flushes what is left when the stream ends. */
  end(): Line[] {
    const rest = this.pending.replace(/\r$/, '')
    const hadCr = this.pending.endsWith('\r')
    this.pending = ''
    return rest === '' ? [] : [{ text: rest, transient: hadCr }]
  }
}

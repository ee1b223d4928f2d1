import { LIMITS } from '@autoresearch-grid/shared'
import type { Line } from './lines.ts'

/**
 * Keeps the two parts of a trainer's output the worker needs, in bounded memory however long the
 * run: the last lines for the report (transient progress redraws collapse into one) and everything
 * from the last `---` on, where the summary block lives.
 */
export class OutputCollector {
  private tail: string[] = []
  private lastWasTransient = false
  private summary: string[] | null = null

  constructor(
    private readonly tailLines = 50,
    /** A summary is ten lines; anything far longer after `---` is not a summary. */
    private readonly summaryLines = 1000,
    /** The report refuses a longer tail; its end (the error) is the part worth keeping. */
    private readonly tailChars: number = LIMITS.logTailBytes,
  ) {}

  add(line: Line): void {
    if (this.lastWasTransient) this.tail.pop()
    this.tail.push(line.text)
    if (this.tail.length > this.tailLines) this.tail.shift()
    this.lastWasTransient = line.transient

    if (line.text.trim() === '---') this.summary = ['---']
    else if (this.summary && this.summary.length < this.summaryLines) this.summary.push(line.text)
  }

  /** The last lines, newline-joined, cut from the front to fit the report. */
  logTail(): string {
    const text = this.tail.join('\n')
    return text.length <= this.tailChars ? text : text.slice(text.length - this.tailChars)
  }

  /** The text `parseSummary` should see: the last `---` block, or the tail when there was none. */
  summaryText(): string {
    return this.summary ? this.summary.join('\n') : this.logTail()
  }
}

import { LIMITS } from '@autoresearch-grid/shared'

/**
 * The only things the Claude agent can do to the world: look at, and change, the campaign's
 * editable files, held in memory. Any other path (prepare.py, ../, /etc/passwd) is refused with a
 * tool error the model can read. Pure: no file system behind it.
 */

export interface ToolOutcome {
  content: string
  isError: boolean
}

/** JSON schemas of the tools, in the Messages API's `tools` shape. */
export const FILE_TOOLS = [
  {
    name: 'view_file',
    description: 'Show an editable file with line numbers (optionally a range of lines).',
    input_schema: {
      type: 'object' as const,
      properties: {
        path: { type: 'string', description: 'file name, e.g. train.py' },
        start_line: { type: 'integer', minimum: 1 },
        end_line: { type: 'integer', minimum: 1 },
      },
      required: ['path'],
    },
  },
  {
    name: 'replace_in_file',
    description: 'Replace one exact, unique occurrence of old_string with new_string in an editable file. Include enough context to make old_string unique.',
    input_schema: {
      type: 'object' as const,
      properties: { path: { type: 'string' }, old_string: { type: 'string' }, new_string: { type: 'string' } },
      required: ['path', 'old_string', 'new_string'],
    },
  },
  {
    name: 'write_file',
    description: 'Replace the whole content of an editable file.',
    input_schema: {
      type: 'object' as const,
      properties: { path: { type: 'string' }, content: { type: 'string' } },
      required: ['path', 'content'],
    },
  },
  {
    name: 'finish',
    description: 'Submit the edited files for training. Call exactly once, after your edits.',
    input_schema: {
      type: 'object' as const,
      properties: {
        description: { type: 'string', description: `one line, at most ${LIMITS.descriptionChars} characters: what changed, e.g. "MATRIX_LR 0.04 -> 0.06"` },
        rationale: { type: 'string', description: 'why this should lower val_bpb, in a few sentences' },
        follow_ups: {
          type: 'array',
          maxItems: LIMITS.followUps,
          description: 'up to 3 hypotheses worth trying next',
          items: { type: 'object', properties: { title: { type: 'string' }, body: { type: 'string' } }, required: ['title'] },
        },
      },
      required: ['description', 'rationale'],
    },
  },
]

export class EditableFiles {
  private readonly files: Map<string, string>

  constructor(files: Record<string, string>, private readonly editable: readonly string[]) {
    this.files = new Map(Object.entries(files).filter(([name]) => editable.includes(name)))
  }

  snapshot(): Record<string, string> {
    return Object.fromEntries(this.files)
  }

  /** Runs one file tool; `finish` is the session's business, not this class's. */
  run(tool: string, input: unknown): ToolOutcome {
    const args = (input ?? {}) as Record<string, unknown>
    const path = this.resolve(args.path)
    if (typeof path !== 'string') return path
    const text = this.files.get(path)!
    switch (tool) {
      case 'view_file': {
        const lines = text.split('\n')
        const start = Math.max(1, Number(args.start_line) || 1)
        const end = Math.min(lines.length, Number(args.end_line) || lines.length)
        if (start > end) return error(`${path} has ${lines.length} lines; start_line ${start} is past end_line ${end}`)
        return ok(lines.slice(start - 1, end).map((l, i) => `${String(start + i).padStart(5)}  ${l}`).join('\n'))
      }
      case 'replace_in_file': {
        if (typeof args.old_string !== 'string' || typeof args.new_string !== 'string') return error('old_string and new_string must be strings')
        if (args.old_string === '') return error('old_string is empty; use write_file to replace a whole file')
        const count = text.split(args.old_string).length - 1
        if (count === 0) return error(`old_string was not found in ${path}; view the file and copy the text exactly, whitespace included`)
        if (count > 1) return error(`old_string occurs ${count} times in ${path}; include more surrounding lines so it is unique`)
        return this.store(path, text.replace(args.old_string, () => args.new_string as string), `replaced 1 occurrence in ${path}`)
      }
      case 'write_file': {
        if (typeof args.content !== 'string') return error('content must be a string')
        return this.store(path, args.content, `wrote ${path} (${args.content.split('\n').length} lines)`)
      }
      default:
        return error(`unknown tool "${tool}"; the tools are view_file, replace_in_file, write_file and finish`)
    }
  }

  private resolve(raw: unknown): string | ToolOutcome {
    const path = typeof raw === 'string' ? raw.trim().replace(/^\.\//, '') : ''
    if (!this.files.has(path)) {
      return error(`refused: "${String(raw)}" is not an editable file of this campaign. You may only view and edit ${this.editable.join(', ')}; prepare.py and everything else is locked.`)
    }
    return path
  }

  private store(path: string, text: string, message: string): ToolOutcome {
    const total = [...this.files].reduce((n, [name, t]) => n + (name === path ? text.length : t.length), 0)
    if (total > LIMITS.sourceBytes) return error(`refused: the editable files would total ${total} bytes; the limit is ${LIMITS.sourceBytes}`)
    this.files.set(path, text)
    return ok(message)
  }
}

const ok = (content: string): ToolOutcome => ({ content, isError: false })
const error = (content: string): ToolOutcome => ({ content, isError: true })

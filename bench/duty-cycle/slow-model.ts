import { createRng } from '../../shared/src/index.ts'
import { message, toolUse, toolResults, type MessagesRequest, type Responder, type ScriptedReply } from '../../worker/test/fixtures/messages-server.ts'

/**
 * A model that thinks as long as a real one: each turn is answered after a random latency, with
 * tool calls that make a real edit to train.py (one hyperparameter constant, a valid value) and
 * the final answer (`finish`). With `turns: 2` the edit and the finish come in two turns, each as
 * slow. It reads train.py from the request, so it serves any number of sessions at once.
 */

/** The constants it edits, and how: a factor for the learning rates, a value in a range otherwise. */
const KNOBS: { name: string; next: (value: number, r: number) => number }[] = [
  { name: 'MATRIX_LR', next: (v, r) => v * (0.6 + 0.8 * r) },
  { name: 'EMBEDDING_LR', next: (v, r) => v * (0.6 + 0.8 * r) },
  { name: 'UNEMBEDDING_LR', next: (v, r) => v * (0.6 + 0.8 * r) },
  { name: 'SCALAR_LR', next: (v, r) => v * (0.6 + 0.8 * r) },
  { name: 'MUON_MOMENTUM', next: (_, r) => 0.85 + 0.12 * r },
  { name: 'WARMDOWN_FRAC', next: (_, r) => 0.2 + 0.6 * r },
]

/** train.py as the request shows it: the first user message holds the current files. */
function trainPy(request: MessagesRequest): string | null {
  const first = request.messages[0]
  const text = typeof first?.content === 'string' ? first.content : (first?.content ?? []).map(b => (typeof b.text === 'string' ? b.text : '')).join('\n')
  return /<file name="train\.py">\n([\s\S]*?)\n<\/file>/.exec(text)?.[1] ?? null
}

/** A replace_in_file call that changes one constant of train.py, and what it did. */
export function editOf(source: string, rand: () => number): { input: Record<string, string>; description: string } | null {
  const knobs = KNOBS.filter(k => new RegExp(`^${k.name} = [0-9.e+-]+`, 'm').test(source))
  if (!knobs.length) return null
  const knob = knobs[Math.floor(rand() * knobs.length)]
  const line = new RegExp(`^(${knob.name} = )([0-9.e+-]+)(.*)$`, 'm').exec(source)!
  const before = Number(line[2])
  const after = Number(knob.next(before, rand()).toPrecision(3))
  return {
    input: { path: 'train.py', old_string: line[0], new_string: `${line[1]}${after}${line[3]}` },
    description: `${knob.name} ${before} -> ${after}`,
  }
}

export interface SlowModelOptions {
  /** Seconds a turn takes, drawn uniformly from [min, max]. */
  latency: [number, number]
  turns: 1 | 2
  seed: number
  /** Each turn's latency, as it is drawn (for the report). */
  onTurn?: (seconds: number) => void
}

export function slowModel(o: SlowModelOptions): Responder {
  const rand = createRng(o.seed).next
  return async request => {
    const seconds = o.latency[0] + (o.latency[1] - o.latency[0]) * rand()
    o.onTurn?.(seconds)
    const reply = answer(request, o.turns, rand)
    await new Promise(resolve => setTimeout(resolve, seconds * 1000))
    return reply
  }
}

function answer(request: MessagesRequest, turns: 1 | 2, rand: () => number): ScriptedReply {
  const source = trainPy(request)
  const edit = source ? editOf(source, rand) : null
  if (!edit) return message([{ type: 'text', text: 'train.py has none of the constants this model edits' }], undefined, 'end_turn')
  const finish = (description: string) => toolUse('finish', { description, rationale: 'A hyperparameter step, as a model would try one.', follow_ups: [] })
  if (turns === 1) return message([toolUse('replace_in_file', edit.input), finish(edit.description)])
  // Two turns: the first edits, the second (answering the edit's tool result) finishes.
  const made = toolResults(request).some(r => !r.is_error) ? lastEdit(request) : null
  return made ? message([finish(made)]) : message([toolUse('replace_in_file', edit.input)])
}

/** What the previous turn's edit did, as `NAME old -> new`. */
function lastEdit(request: MessagesRequest): string | null {
  const turn = request.messages[request.messages.length - 2]
  const use = Array.isArray(turn?.content) ? turn.content.find(b => b.type === 'tool_use' && b.name === 'replace_in_file') : undefined
  const input = use?.input as Record<string, string> | undefined
  if (!input) return null
  const [name, before] = input.old_string.split(' = ')
  return `${name} ${parseFloat(before)} -> ${parseFloat(input.new_string.split(' = ')[1])}`
}

import { createRng, type Profile } from '@autoresearch-grid/shared'

/**
 * The built-in heuristic researcher: no API key, no network. It proposes one named change to one
 * hyperparameter constant at the top of train.py (`NAME = value  # comment`), chosen
 * deterministically from a seed, never repeating what was already tried on the same parent, and
 * steered by the hypothesis when its text names a constant.
 *
 * Everything here is pure: source text in, source text out.
 */

export interface HeuristicProposal {
  /** Stable id of the mutation, e.g. `matrix-lr-up`; what `tried` lists to avoid repeats. */
  name: string
  /** One line, e.g. `MATRIX_LR 0.04 -> 0.06 (raise the Muon learning rate)`. */
  description: string
  /** The whole new train.py. */
  source: string
}

export interface HeuristicInput {
  source: string
  /** Names or descriptions of what was already tried on this parent. */
  tried: readonly string[]
  seed: number
  hypothesis?: { title: string; body: string } | null
  /** Only mutations that change something under this profile (cpu-tiny ignores DEPTH, etc.). */
  profile?: Profile
}

// ---------------------------------------------------------------------------------------------
// Reading the constants.

type Value = number | string
type Kind = 'int' | 'float' | 'pow2' | 'string'

export interface Constant {
  name: string
  value: Value
  kind: Kind
  /** The literal as written, e.g. `2**19` or `0.04`. */
  literal: string
  /** Index of the line in `source.split('\n')`. */
  line: number
  /** `NAME = ` as written, and everything after the literal (spacing and comment). */
  head: string
  tail: string
  /** The string's quote character. */
  quote?: string
}

const LITERAL = String.raw`2\s*\*\*\s*\d+|[+-]?(?:\d[\d_]*\.?[\d_]*|\.\d+)(?:[eE][+-]?\d+)?|"[^"\\\n]*"|'[^'\\\n]*'`
const ASSIGNMENT = new RegExp(String.raw`^([A-Z][A-Z0-9_]*)(\s*=\s*)(${LITERAL})(\s*(?:#.*)?)$`)

function readLiteral(literal: string): { value: Value; kind: Kind; quote?: string } {
  const pow = /^2\s*\*\*\s*(\d+)$/.exec(literal)
  if (pow) return { value: 2 ** Number(pow[1]), kind: 'pow2' }
  if (/^["']/.test(literal)) return { value: literal.slice(1, -1), kind: 'string', quote: literal[0] }
  const n = Number(literal.replace(/_/g, ''))
  return { value: n, kind: /[.eE]/.test(literal) ? 'float' : 'int' }
}

/**
 * Top-level constants with a plain literal value, assigned exactly once (a second assignment
 * would silently undo a change to the first), outside docstrings.
 */
export function parseConstants(source: string): Map<string, Constant> {
  const lines = source.split('\n')
  const found = new Map<string, Constant>()
  const assignments = new Map<string, number>()
  let inDocstring = false
  lines.forEach((raw, index) => {
    const line = raw.replace(/\r$/, '')
    const quotes = (line.match(/"""|'''/g) ?? []).length
    const wasInDocstring = inDocstring
    if (quotes % 2 === 1) inDocstring = !inDocstring
    if (wasInDocstring || quotes > 0) return
    const name = /^([A-Z][A-Z0-9_]*)\s*(?::[^=]*)?=(?!=)/.exec(line)?.[1]
    if (name) assignments.set(name, (assignments.get(name) ?? 0) + 1)
    const m = ASSIGNMENT.exec(line)
    if (!m) return
    const [, constName, eq, literal, tail] = m
    const parsed = readLiteral(literal)
    if (typeof parsed.value === 'number' && !Number.isFinite(parsed.value)) return
    found.set(constName, { name: constName, ...parsed, literal, line: index, head: constName + eq, tail })
  })
  for (const name of [...found.keys()]) if (assignments.get(name) !== 1) found.delete(name)
  return found
}

// ---------------------------------------------------------------------------------------------
// Writing values back in the constant's own style.

function roundSignificant(v: number): number {
  return Number(v.toPrecision(3))
}

/** The literal for a new value, or null when the constant's kind cannot hold it. */
function formatValue(c: Constant, v: Value): string | null {
  if (c.kind === 'string') return typeof v === 'string' ? `${c.quote}${v}${c.quote}` : null
  if (typeof v !== 'number' || !Number.isFinite(v)) return null
  if (c.kind === 'pow2') {
    const exp = Math.log2(v)
    return Number.isInteger(exp) && exp >= 0 ? `2**${exp}` : null
  }
  if (c.kind === 'int') return Number.isInteger(v) ? String(v) : null
  const text = String(roundSignificant(v))
  return /[.e]/.test(text) ? text : `${text}.0`
}

// ---------------------------------------------------------------------------------------------
// The catalogue: knobs, each with a way to move up and down within sane bounds.

type Direction = 'up' | 'down'

interface Knob {
  constant: string
  /** Words a hypothesis may use for it, beyond the constant's own name. */
  aliases?: string[]
  /** Profiles under which train.py reads it; all when absent. */
  profiles?: Profile[]
  /** Whether the rest of the source lets the constant matter (a change would otherwise train the same model). */
  matters?: (constants: Map<string, Constant>) => boolean
  min?: number
  max?: number
  move: (value: Value, direction: Direction) => Value | null
  /** Values the constant may take beyond min/max (e.g. the letters of a window pattern). */
  accepts?: (value: Value) => boolean
  up: string
  down: string
  /** Names of the two mutations when `-up`/`-down` would read oddly. */
  names?: { up: string; down: string }
}

const scale = (factor: number) => (v: Value, d: Direction) =>
  typeof v === 'number' ? roundSignificant(d === 'up' ? v * factor : v / factor) : null
const step = (delta: number) => (v: Value, d: Direction) => (typeof v === 'number' ? v + (d === 'up' ? delta : -delta) : null)
const double = () => (v: Value, d: Direction) => (typeof v === 'number' ? (d === 'up' ? v * 2 : v / 2) : null)
/** Next rung above or below the current value, so values off the ladder still move sensibly. */
const ladder = (rungs: number[]) => (v: Value, d: Direction) => {
  if (typeof v !== 'number') return null
  const next = d === 'up' ? rungs.find(r => r > v + 1e-12) : [...rungs].reverse().find(r => r < v - 1e-12)
  return next ?? null
}
/** Window patterns are strings of S (sliding window) and L (full context) per layer. */
const windows = (v: Value, d: Direction) => {
  if (typeof v !== 'string' || !/^[SL]+$/.test(v)) return null
  if (d === 'up') return v.length < 8 ? `S${v}` : null // one more sliding-window layer per full one
  const i = v.indexOf('S')
  return i < 0 ? null : v.slice(0, i) + v.slice(i + 1) || 'L'
}

const GPU: Profile[] = ['gpu']
const TINY: Profile[] = ['cpu-tiny']

const KNOBS: Knob[] = [
  { constant: 'MATRIX_LR', aliases: ['muon lr', 'matrix lr'], min: 0.001, max: 0.3, move: scale(1.5), up: 'raise the Muon learning rate', down: 'lower the Muon learning rate' },
  { constant: 'EMBEDDING_LR', aliases: ['embedding lr', 'embeddings lr'], min: 0.01, max: 5, move: scale(1.5), up: 'raise the embedding learning rate', down: 'lower the embedding learning rate' },
  { constant: 'UNEMBEDDING_LR', aliases: ['unembedding lr', 'lm head lr', 'output lr'], min: 1e-4, max: 0.1, move: scale(1.5), up: 'raise the lm_head learning rate', down: 'lower the lm_head learning rate' },
  { constant: 'SCALAR_LR', aliases: ['scalar lr', 'scalars lr'], min: 0.01, max: 5, move: scale(1.5), up: 'raise the scalar learning rate', down: 'lower the scalar learning rate' },
  { constant: 'DEPTH', aliases: ['depth', 'layers', 'deeper', 'shallower'], profiles: GPU, min: 2, max: 32, move: step(1), up: 'one more transformer block', down: 'one transformer block fewer' },
  { constant: 'TINY_DEPTH', aliases: ['depth', 'layers', 'deeper', 'shallower'], profiles: TINY, min: 1, max: 8, move: step(1), up: 'one more transformer block', down: 'one transformer block fewer' },
  { constant: 'ASPECT_RATIO', aliases: ['width', 'model dim', 'wider', 'narrower'], profiles: GPU, min: 32, max: 128, move: ladder([32, 48, 64, 80, 96, 112, 128]), up: 'wider model', down: 'narrower model' },
  { constant: 'TINY_MODEL_DIM', aliases: ['width', 'model dim', 'wider', 'narrower'], profiles: TINY, min: 32, max: 512, move: ladder([32, 64, 96, 128, 192, 256, 384, 512]), up: 'wider model', down: 'narrower model' },
  { constant: 'HEAD_DIM', aliases: ['head dim', 'heads'], profiles: GPU, min: 32, max: 256, move: double(), up: 'fewer, wider attention heads', down: 'more, narrower attention heads' },
  { constant: 'TINY_HEAD_DIM', aliases: ['head dim', 'heads'], profiles: TINY, min: 16, max: 256, move: double(), up: 'fewer, wider attention heads', down: 'more, narrower attention heads' },
  { constant: 'MLP_RATIO', aliases: ['mlp ratio', 'mlp width', 'mlp'], min: 1, max: 8, move: step(1), up: 'wider MLP', down: 'narrower MLP' },
  { constant: 'TOTAL_BATCH_TOKENS', aliases: ['batch', 'total batch'], profiles: GPU, min: 2 ** 14, max: 2 ** 22, move: double(), up: 'double the tokens per optimizer step', down: 'halve the tokens per optimizer step' },
  { constant: 'TINY_TOTAL_BATCH_TOKENS', aliases: ['batch', 'total batch'], profiles: TINY, min: 2 ** 7, max: 2 ** 14, move: double(), up: 'double the tokens per optimizer step', down: 'halve the tokens per optimizer step' },
  { constant: 'DEVICE_BATCH', aliases: ['device batch', 'micro batch'], profiles: GPU, min: 1, max: 512, move: double(), up: 'fewer gradient-accumulation passes per step', down: 'more gradient-accumulation passes per step' },
  { constant: 'TINY_DEVICE_BATCH', aliases: ['device batch', 'micro batch'], profiles: TINY, min: 1, max: 64, move: double(), up: 'fewer gradient-accumulation passes per step', down: 'more gradient-accumulation passes per step' },
  { constant: 'WARMUP_FRAC', aliases: ['warmup', 'warm up'], min: 0, max: 0.3, move: ladder([0, 0.02, 0.05, 0.1, 0.2, 0.3]), up: 'longer learning-rate warm-up', down: 'shorter learning-rate warm-up' },
  { constant: 'WARMDOWN_FRAC', aliases: ['warmdown', 'warm down', 'cooldown', 'cool down', 'decay phase'], min: 0.1, max: 0.9, move: ladder([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]), up: 'longer learning-rate warm-down', down: 'shorter learning-rate warm-down' },
  { constant: 'FINAL_LR_FRAC', aliases: ['final lr', 'min lr'], min: 0, max: 0.5, move: ladder([0, 0.02, 0.05, 0.1, 0.2, 0.5]), up: 'end the schedule at a higher learning rate', down: 'end the schedule at a lower learning rate' },
  { constant: 'WEIGHT_DECAY', aliases: ['weight decay', 'wd'], min: 0, max: 1, move: ladder([0, 0.05, 0.1, 0.2, 0.4, 0.8]), up: 'more weight decay on the Muon matrices', down: 'less weight decay on the Muon matrices' },
  { constant: 'LOGIT_SOFTCAP', aliases: ['softcap', 'soft cap', 'logit cap'], min: 5, max: 100, move: ladder([5, 8, 10, 12, 15, 20, 30, 50, 100]), up: 'looser logit soft-cap', down: 'tighter logit soft-cap' },
  { constant: 'WINDOW_PATTERN', aliases: ['window pattern', 'sliding window', 'windows', 'attention pattern'], move: windows, accepts: v => typeof v === 'string' && /^[SL]{1,8}$/.test(v), up: 'more sliding-window layers', down: 'more full-context layers', names: { up: 'window-pattern-more-sliding', down: 'window-pattern-more-full' } },
  { constant: 'SHORT_WINDOW', aliases: ['short window', 'window size', 'window length'], matters: c => /S/.test(String(c.get('WINDOW_PATTERN')?.value ?? 'S')), min: 0.0625, max: 1, move: ladder([0.0625, 0.125, 0.25, 0.5, 0.75, 1]), up: 'longer sliding window', down: 'shorter sliding window' },
  { constant: 'ADAM_BETA1', aliases: ['beta1', 'adam beta1'], min: 0.5, max: 0.95, move: ladder([0.5, 0.7, 0.8, 0.85, 0.9, 0.95]), up: 'more AdamW momentum', down: 'less AdamW momentum' },
  { constant: 'ADAM_BETA2', aliases: ['beta2', 'adam beta2'], min: 0.9, max: 0.999, move: ladder([0.9, 0.95, 0.98, 0.99, 0.995, 0.999]), up: 'slower AdamW second moment', down: 'faster AdamW second moment' },
  { constant: 'MUON_MOMENTUM', aliases: ['muon momentum', 'momentum'], min: 0.8, max: 0.99, move: ladder([0.8, 0.85, 0.9, 0.95, 0.97, 0.99]), up: 'more Muon momentum', down: 'less Muon momentum' },
]

/** Context length per profile (prepare.py's PROFILES): batch sizes must be whole rows of it. */
const SEQ_LEN: Record<Profile, number> = { gpu: 2048, 'cpu-tiny': 128 }

/** Relations between constants that train.py asserts or needs; checked after every change. */
function consistent(values: Map<string, Value>): boolean {
  const n = (k: string) => (typeof values.get(k) === 'number' ? (values.get(k) as number) : null)
  const divides = (a: number | null, b: number | null) => a === null || b === null || (b > 0 && a % b === 0)
  const times = (a: number | null, b: number) => (a === null ? null : a * b)
  return (
    divides(n('TOTAL_BATCH_TOKENS'), times(n('DEVICE_BATCH'), SEQ_LEN.gpu)) &&
    divides(n('TINY_TOTAL_BATCH_TOKENS'), times(n('TINY_DEVICE_BATCH'), SEQ_LEN['cpu-tiny'])) &&
    divides(n('TINY_MODEL_DIM'), n('TINY_HEAD_DIM')) &&
    (n('WARMUP_FRAC') ?? 0) + (n('WARMDOWN_FRAC') ?? 0) <= 1
  )
}

// ---------------------------------------------------------------------------------------------
// Candidate mutations of one source.

interface Candidate extends HeuristicProposal {
  knob: Knob
  direction: Direction | 'set'
}

function kebab(constant: string): string {
  return constant.toLowerCase().replace(/_/g, '-')
}

function applyValue(source: string, constants: Map<string, Constant>, knob: Knob, value: Value): { literal: string; source: string } | null {
  const c = constants.get(knob.constant)!
  if (value === c.value) return null
  if (knob.accepts && !knob.accepts(value)) return null
  if (typeof value === 'number' && ((knob.min !== undefined && value < knob.min - 1e-12) || (knob.max !== undefined && value > knob.max + 1e-12))) return null
  const literal = formatValue(c, value)
  if (literal === null || literal === c.literal) return null
  const values = new Map([...constants].map(([k, v]) => [k, v.value]))
  values.set(c.name, value)
  if (!consistent(values)) return null
  const lines = source.split('\n')
  lines[c.line] = c.head + literal + c.tail
  return { literal, source: lines.join('\n') }
}

function knobApplies(knob: Knob, constants: Map<string, Constant>, profile?: Profile): boolean {
  return constants.has(knob.constant) && (!profile || !knob.profiles || knob.profiles.includes(profile)) && (!knob.matters || knob.matters(constants))
}

function catalogue(source: string, constants: Map<string, Constant>, profile?: Profile): Candidate[] {
  const out: Candidate[] = []
  for (const knob of KNOBS) {
    if (!knobApplies(knob, constants, profile)) continue
    const c = constants.get(knob.constant)!
    for (const direction of ['up', 'down'] as const) {
      const value = knob.move(c.value, direction)
      const applied = value === null ? null : applyValue(source, constants, knob, value)
      if (!applied) continue
      out.push({
        name: knob.names?.[direction] ?? `${kebab(knob.constant)}-${direction}`,
        description: `${c.name} ${c.literal} -> ${applied.literal} (${knob[direction]})`,
        source: applied.source,
        knob,
        direction,
      })
    }
  }
  return out
}

/** Every mutation the catalogue can make to this source, in catalogue order. */
export function listMutations(source: string, options: { profile?: Profile } = {}): HeuristicProposal[] {
  return catalogue(source, parseConstants(source), options.profile).map(({ name, description, source }) => ({ name, description, source }))
}

// ---------------------------------------------------------------------------------------------
// Reading a hypothesis.

/** End of a number or word: not followed by a letter, digit or decimal part (a full stop is fine). */
const END = String.raw`(?![\w]|\.\d)`

const UP_WORDS = /\b(raise|raising|increase|increasing|higher|larger|bigger|more|deeper|wider|double|longer|boost|grow|up|add)\b/
const DOWN_WORDS = /\b(lower|lowering|decrease|decreasing|reduce|reducing|smaller|less|fewer|shallower|narrower|halve|shorter|cut|drop|remove|shrink|down)\b/

/** `matrix lr` → a regex that also matches `MATRIX_LR`, `matrix-lr`, `matrix learning rate`. */
function aliasPattern(alias: string): string {
  return alias
    .toLowerCase()
    .split(/[\s_-]+/)
    .map(w => (w === 'lr' ? String.raw`(?:lr|learning[\s_-]*rates?)` : w.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
    .join(String.raw`[\s_-]*`)
}

interface Mention {
  direction: Direction | null
  /** A value the hypothesis asks for, as text, e.g. `6`, `0.03`, `2**18`, `SL`. */
  value: string | null
}

/** Where the hypothesis talks about this knob, the direction it wants and any value it names. */
function mentionOf(knob: Knob, text: string): Mention | null {
  const aliases = [knob.constant, ...(knob.aliases ?? [])].map(aliasPattern)
  const re = new RegExp(`(?<![a-z0-9_])(?:${aliases.join('|')})(?![a-z0-9_])`, 'gi')
  let mention: Mention | null = null
  for (let m = re.exec(text); m; m = re.exec(text)) {
    const before = text.slice(Math.max(0, m.index - 40), m.index).toLowerCase().split(/[.,;:!?\n]|\band\b|\bbut\b/).pop()!
    const after = text.slice(m.index + m[0].length, m.index + m[0].length + 30)
    const afterWords = after.toLowerCase().split(/[.,;:!?\n]|\band\b|\bbut\b/)[0]
    const valueMatch = new RegExp(String.raw`^\s*(?:=|to|->|→|of|at|:)?\s*(2\s*\*\*\s*\d+|[+-]?\d[\d_]*\.?\d*(?:e[+-]?\d+)?|["']?[SL]+["']?)${END}`, 'i').exec(after)
    const near = (words: RegExp) => words.test(before) || words.test(afterWords.trim().split(/\s+/).slice(0, 4).join(' '))
    const up = near(UP_WORDS) || /\bdeeper\b|\bwider\b/.test(m[0].toLowerCase())
    const down = near(DOWN_WORDS) || /\bshallower\b|\bnarrower\b/.test(m[0].toLowerCase())
    const current: Mention = {
      direction: up && !down ? 'up' : down && !up ? 'down' : null,
      value: valueMatch ? valueMatch[1].replace(/^["']|["']$/g, '') : null,
    }
    // The most specific mention wins: a value beats a direction beats a bare mention.
    const rank = (x: Mention | null) => (x === null ? -1 : x.value ? 2 : x.direction ? 1 : 0)
    if (rank(current) > rank(mention)) mention = current
  }
  return mention
}

function parseRequested(c: Constant, text: string): Value | null {
  if (c.kind === 'string') return text.toUpperCase()
  const pow = /^2\s*\*\*\s*(\d+)$/.exec(text)
  const v = pow ? 2 ** Number(pow[1]) : Number(text.replace(/_/g, ''))
  return Number.isFinite(v) ? v : null
}

// ---------------------------------------------------------------------------------------------
// Choosing.

const normalize = (s: string) => s.trim().toLowerCase().replace(/\s+/g, ' ')

/**
 * Tried if its name or description was listed, or a listed description contains its change
 * (`MATRIX_LR 0.04 -> 0.06`) as whole words, however the rest of that description reads.
 */
function wasTried(candidate: Candidate, tried: readonly string[]): boolean {
  const change = normalize(candidate.description.replace(/\s*\(.*\)$/, '')).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
  const inText = new RegExp(String.raw`(?<![\w.])${change}${END}`)
  return tried.some(entry => {
    const e = normalize(entry)
    return e === candidate.name || e === normalize(candidate.description) || inText.test(e)
  })
}

/**
 * Proposes one mutation of train.py, or null when every mutation the catalogue can make was tried.
 * Among the untried ones it prefers those the hypothesis asks for (a named value first, then the
 * named direction, then anything touching the named constant) and picks among equals by seed.
 */
export function proposeHeuristic(input: HeuristicInput): HeuristicProposal | null {
  const constants = parseConstants(input.source)
  const candidates = catalogue(input.source, constants, input.profile)
  const text = input.hypothesis ? `${input.hypothesis.title}\n${input.hypothesis.body}` : ''
  const scores = new Map<Candidate, number>()

  if (text) {
    for (const knob of KNOBS) {
      if (!knobApplies(knob, constants, input.profile)) continue
      const mention = mentionOf(knob, text)
      if (!mention) continue
      for (const cand of candidates) {
        if (cand.knob !== knob) continue
        scores.set(cand, mention.direction === null ? 1 : mention.direction === cand.direction ? 2 : 0)
      }
      const c = constants.get(knob.constant)!
      const requested = mention.value === null ? null : parseRequested(c, mention.value)
      const applied = requested === null ? null : applyValue(input.source, constants, knob, requested)
      if (applied) {
        const set: Candidate = {
          name: `${kebab(knob.constant)}-set-${applied.literal.replace(/["']/g, '').replace(/[^A-Za-z0-9.]+/g, '_')}`,
          description: `${c.name} ${c.literal} -> ${applied.literal} (as the hypothesis suggests)`,
          source: applied.source,
          knob,
          direction: 'set',
        }
        candidates.push(set)
        scores.set(set, 3)
      }
    }
  }

  const open = candidates.filter(c => !wasTried(c, input.tried))
  if (open.length === 0) return null
  const best = Math.max(...open.map(c => scores.get(c) ?? 0))
  const pool = open.filter(c => (scores.get(c) ?? 0) === best)
  const pick = pool[Math.floor(createRng(input.seed).next() * pool.length)]
  return { name: pick.name, description: pick.description, source: pick.source }
}

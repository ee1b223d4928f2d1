// The folder-level import graph of the production code, checked against the layer order of
// docs/STRUCTURE.md (issue 18: imports ran back up the coordinator's layers, and two folders
// imported each other). Reads the imports of shared/src, trainer/js, coordinator/src and
// worker/src with the TypeScript parser, and
//   npx tsx scripts/structure.ts           redraws the graph in docs/STRUCTURE.md, then checks
//   npx tsx scripts/structure.ts --check   checks only (npm test): also fails when the drawing is stale
// It exits 1 on a cycle (between folders, or between files inside one), on an import from a lower
// layer to a higher one, and on a file in no folder of the layer table below.
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import ts from 'typescript'

const root = join(import.meta.dirname, '..')

/**
 * The layers, lowest first. A folder may import folders of its own layer or of lower ones, never
 * of a higher one; inside a layer the graph must still have no cycle. A node is a folder of a
 * package's source, or one of the files at its top (the entry points and the context type).
 */
export const LAYERS: { name: string; why: string; nodes: string[] }[] = [
  { name: 'shared', why: 'the protocol and the domain concepts both sides use; imports nothing of ours', nodes: ['shared'] },
  { name: 'trainer glue', why: 'finds a Python for the trainer and prepares its data (trainer/js)', nodes: ['trainer'] },
  { name: 'coordinator: pure core', why: 'decisions on data, no I/O: statistics, ratchet, scheduler, error codes', nodes: [
    'coordinator/errors', 'coordinator/ratchet', 'coordinator/scheduler', 'coordinator/faults'] },
  { name: 'coordinator: storage and signals', why: 'SQLite, the git store, the event bus, the audit log and the opt-in step trace', nodes: [
    'coordinator/trace', 'coordinator/db', 'coordinator/git', 'coordinator/events'] },
  { name: 'coordinator: context', why: 'the Ctx every module receives: db, git, bus, settings, clock, in-memory state', nodes: ['coordinator/context'] },
  { name: 'coordinator: domain', why: 'one folder per concept, each writing its own tables', nodes: [
    'coordinator/auth', 'coordinator/dataset', 'coordinator/campaigns', 'coordinator/measurements', 'coordinator/hypotheses', 'coordinator/classes', 'coordinator/review',
    'coordinator/workers', 'coordinator/swarm'] },
  { name: 'coordinator: work units', why: 'leasing, reports, judging and merging: the loop that uses every domain folder', nodes: ['coordinator/units'] },
  { name: 'coordinator: reads', why: 'what the dashboard and the status page show; reads only, and the live feed', nodes: ['coordinator/dashboard', 'coordinator/status'] },
  { name: 'coordinator: API', why: 'tRPC routers: input schemas, auth, error codes; they call the layers below', nodes: ['coordinator/api'] },
  { name: 'coordinator: HTTP', why: 'fastify plugins, one per route family (tRPC, tokenizer, git, data, dashboard)', nodes: ['coordinator/http'] },
  { name: 'coordinator: edges', why: 'the server, the process, the CLI, the package entry and the tools', nodes: [
    'coordinator/server', 'coordinator/coordinator', 'coordinator/cli', 'coordinator/index', 'coordinator/tools'] },
  { name: 'worker: parts', why: 'what the loop is built from: client, data, hardware, safety, sandbox, runner, workspace, swarm, ui', nodes: [
    'worker/client', 'worker/data', 'worker/hardware', 'worker/safety', 'worker/sandbox', 'worker/runner', 'worker/workspace', 'worker/swarm', 'worker/ui'] },
  { name: 'worker: agents', why: 'the researchers that edit train.py: Claude, the heuristic, an external command', nodes: ['worker/agent'] },
  { name: 'worker: loops', why: 'the experiment loop, join and solo, and the doctor', nodes: ['worker/loop', 'worker/solo', 'worker/doctor'] },
  { name: 'worker: edges', why: 'the CLI and the package entry', nodes: ['worker/cli', 'worker/index'] },
]

/**
 * Imports that break the rules today and are owed by work in flight: the check warns about each,
 * fails on any other, and fails once one of these is gone (so the list only shrinks). An entry is
 * a folder edge (`a → b`, which also covers the file circles behind it) or a file edge.
 */
export const OWED: { edge: string; owner: string; fix: string }[] = [
]

/** Source roots: a package's name, its folder, and whether its top-level files are one node (a flat package). */
const ROOTS = [
  { pkg: 'shared', dir: 'shared/src', flat: true, specifier: '@autoresearch-grid/shared' },
  { pkg: 'trainer', dir: 'trainer/js', flat: true, specifier: '@autoresearch-grid/trainer' },
  { pkg: 'coordinator/tools', dir: 'coordinator/tools', flat: true, specifier: null },
  { pkg: 'coordinator', dir: 'coordinator/src', flat: false, specifier: '@autoresearch-grid/coordinator' },
  { pkg: 'worker', dir: 'worker/src', flat: false, specifier: '@autoresearch-grid/worker' },
]

export interface Import { from: string; to: string; typeOnly: boolean }

function* files(dir: string): Generator<string> {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) {
      if (name !== 'node_modules' && name !== 'test' && name !== 'web') yield* files(path)
    } else if (/\.tsx?$/.test(name) && !name.endsWith('.d.ts')) yield path
  }
}

/** The module specifiers a file imports or re-exports, with whether only types come through. */
function specifiersOf(path: string): { specifier: string; typeOnly: boolean }[] {
  const source = ts.createSourceFile(path, readFileSync(path, 'utf8'), ts.ScriptTarget.Latest, false)
  const out: { specifier: string; typeOnly: boolean }[] = []
  const visit = (node: ts.Node) => {
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) {
      const clause = node.importClause
      const typeOnly = !!clause && (clause.isTypeOnly || (!clause.name && !!clause.namedBindings && ts.isNamedImports(clause.namedBindings) &&
        clause.namedBindings.elements.length > 0 && clause.namedBindings.elements.every(e => e.isTypeOnly)))
      out.push({ specifier: node.moduleSpecifier.text, typeOnly })
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      out.push({ specifier: node.moduleSpecifier.text, typeOnly: node.isTypeOnly })
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword && node.arguments[0] && ts.isStringLiteral(node.arguments[0])) {
      out.push({ specifier: node.arguments[0].text, typeOnly: false })
    }
    ts.forEachChild(node, visit)
  }
  visit(source)
  return out
}

/** The file an import names, relative to the repository; null for a package that is not ours. */
function resolveSpecifier(fromFile: string, specifier: string): string | null {
  const own = ROOTS.find(r => specifier === r.specifier)
  if (own) return `${own.dir}/index.ts`
  if (!specifier.startsWith('.')) return null
  return relative(root, resolve(dirname(join(root, fromFile)), specifier.replace(/\.js$/, '.ts')))
}

/** The node a file belongs to: `coordinator/api`, `coordinator/context`, `shared`. */
export function nodeOf(file: string): string | null {
  const r = ROOTS.find(r => file.startsWith(`${r.dir}/`))
  if (!r) return null
  if (r.flat) return r.pkg
  const rest = file.slice(r.dir.length + 1).split('/')
  return `${r.pkg}/${rest.length > 1 ? rest[0] : rest[0].replace(/\.tsx?$/, '')}`
}

/** Every import between our own files. */
export function readImports(): Import[] {
  const out: Import[] = []
  for (const r of ROOTS) {
    for (const path of files(join(root, r.dir))) {
      const from = relative(root, path)
      for (const { specifier, typeOnly } of specifiersOf(path)) {
        const to = resolveSpecifier(from, specifier)
        if (to) out.push({ from, to, typeOnly })
      }
    }
  }
  return out
}

/** Strongly connected components of more than one member (Tarjan): each is a cycle. */
export function cycles(edges: Map<string, Set<string>>): string[][] {
  const index = new Map<string, number>()
  const low = new Map<string, number>()
  const stack: string[] = []
  const onStack = new Set<string>()
  const found: string[][] = []
  const visit = (v: string) => {
    index.set(v, index.size)
    low.set(v, index.get(v)!)
    stack.push(v)
    onStack.add(v)
    for (const w of edges.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w)
        low.set(v, Math.min(low.get(v)!, low.get(w)!))
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!))
    }
    if (low.get(v) !== index.get(v)) return
    const component: string[] = []
    let w: string
    do {
      w = stack.pop()!
      onStack.delete(w)
      component.push(w)
    } while (w !== v)
    if (component.length > 1) found.push(component.sort())
  }
  for (const v of [...edges.keys()].sort()) if (!index.has(v)) visit(v)
  return found
}

function addEdge(edges: Map<string, Set<string>>, from: string, to: string): void {
  if (!edges.has(from)) edges.set(from, new Set())
  if (!edges.has(to)) edges.set(to, new Set())
  if (from !== to) edges.get(from)!.add(to)
}

export interface Edge {
  /** Every import behind the edge brings only types. */
  typeOnly: boolean
  /** The file imports behind it, `from → to`. */
  imports: string[]
}

export interface Report {
  /** Folder-level edges: from → to → edge. */
  edges: Map<string, Map<string, Edge>>
  /** Files in no node of the layer table. */
  unplaced: string[]
  /** Circles between folders, and between files of one folder, once the owed edges are left out. */
  cycles: string[][]
  /** Imports from a layer up to a higher one, owed edges left out. */
  upward: string[]
  /** Owed edges that are still there, and those that are gone (the entry must go too). */
  owedSeen: string[]
  owedGone: string[]
}

export function analyse(imports: readonly Import[], layers = LAYERS, owed = OWED.map(o => o.edge)): Report {
  const layerOf = new Map(layers.flatMap((l, i) => l.nodes.map(n => [n, i] as const)))
  const edges: Report['edges'] = new Map()
  const unplaced = new Set<string>()
  const seen = new Set<string>()
  const fileEdges = new Map<string, Set<string>>()
  for (const i of imports) {
    const a = nodeOf(i.from)
    const b = nodeOf(i.to)
    for (const [node, file] of [[a, i.from], [b, i.to]] as const) if (!node || !layerOf.has(node)) unplaced.add(node ?? file)
    const folderEdge = `${a} → ${b}`
    const fileEdge = `${i.from} → ${i.to}`
    for (const e of [folderEdge, fileEdge]) if (owed.includes(e)) seen.add(e)
    if (owed.includes(folderEdge) || owed.includes(fileEdge)) continue
    addEdge(fileEdges, i.from, i.to)
    if (!a || !b || a === b) continue
    if (!edges.has(a)) edges.set(a, new Map())
    const edge = edges.get(a)!.get(b) ?? { typeOnly: true, imports: [] }
    edge.typeOnly &&= i.typeOnly
    edge.imports.push(fileEdge)
    edges.get(a)!.set(b, edge)
  }
  const folderEdges = new Map<string, Set<string>>()
  const upward: string[] = []
  for (const [a, targets] of edges) {
    for (const [b, edge] of targets) {
      addEdge(folderEdges, a, b)
      const la = layerOf.get(a)
      const lb = layerOf.get(b)
      if (la !== undefined && lb !== undefined && lb > la) upward.push(`${a} (${layers[la].name}) imports ${b} (${layers[lb].name}): ${edge.imports.join(', ')}`)
    }
  }
  // A circle of files across folders is also one of folders: file circles are reported inside one folder only.
  const fileCycles = cycles(fileEdges).filter(c => new Set(c.map(nodeOf)).size === 1)
  return {
    edges, unplaced: [...unplaced].sort(), cycles: [...cycles(folderEdges), ...fileCycles], upward: upward.sort(),
    owedSeen: owed.filter(e => seen.has(e)), owedGone: owed.filter(e => !seen.has(e)),
  }
}

/**
 * The edges worth drawing: an edge a → b is left out when b is reachable from a another way
 * (a → c → … → b), since the layering already says it. The full list is printed in words.
 */
export function reduced(edges: Report['edges']): Report['edges'] {
  const reachable = (from: string, to: string, skip: string): boolean => {
    const stack = [...(edges.get(from)?.keys() ?? [])].filter(n => n !== skip)
    const seen = new Set<string>()
    while (stack.length) {
      const n = stack.pop()!
      if (n === to) return true
      if (seen.has(n)) continue
      seen.add(n)
      stack.push(...(edges.get(n)?.keys() ?? []))
    }
    return false
  }
  const out: Report['edges'] = new Map()
  for (const [a, targets] of edges) out.set(a, new Map([...targets].filter(([b]) => !reachable(a, b, b))))
  return out
}

/** The graph as mermaid, one box per layer, lowest first; dotted edges bring only types. */
export function mermaid(report: Report, layers = LAYERS): string {
  const id = (node: string) => node.replace(/[^a-zA-Z0-9]/g, '_')
  const lines = ['flowchart TB']
  layers.forEach((l, i) => {
    lines.push(`  subgraph L${i}["${i + 1}. ${l.name}"]`)
    for (const n of l.nodes) lines.push(`    ${id(n)}["${n}"]`)
    lines.push('  end')
  })
  for (const [a, targets] of [...reduced(report.edges)].sort(([x], [y]) => x.localeCompare(y))) {
    for (const [b, edge] of [...targets].sort(([x], [y]) => x.localeCompare(y))) lines.push(`  ${id(a)} ${edge.typeOnly ? '-.->' : '-->'} ${id(b)}`)
  }
  for (const o of OWED.filter(o => report.owedSeen.includes(o.edge) && !o.edge.includes('.ts'))) {
    const [a, b] = o.edge.split(' → ')
    lines.push(`  ${id(a)} == owed ==> ${id(b)}`)
  }
  return lines.join('\n')
}

/** The generated part of docs/STRUCTURE.md: the layer table, the drawing, the owed list, the edges in words. */
export function render(report: Report, layers = LAYERS): string {
  const out = ['| layer | folders | what lives there |', '|---|---|---|']
  layers.slice().reverse().forEach((l, j) => out.push(`| ${layers.length - j}. ${l.name} | ${l.nodes.map(n => `\`${n}\``).join(', ')} | ${l.why} |`))
  out.push('', '```mermaid', mermaid(report, layers), '```', '')
  out.push('Owed (warned about, not failed; each entry must go once its import does):', '')
  for (const o of OWED) out.push(`- \`${o.edge}\` — ${o.owner}: ${o.fix}`)
  if (!OWED.length) out.push('- none: every import keeps the rules.')
  out.push('', 'Every folder and what it imports (_types_: only types):', '')
  for (const l of layers) {
    for (const n of l.nodes) {
      const targets = [...(report.edges.get(n) ?? new Map<string, Edge>())].sort(([x], [y]) => x.localeCompare(y))
      out.push(`- \`${n}\` → ${targets.length ? targets.map(([b, e]) => (e.typeOnly ? `_${b}_` : b)).join(', ') : '(nothing of ours)'}`)
    }
  }
  return out.join('\n')
}

const BEGIN = '<!-- structure:begin (generated by scripts/structure.ts: do not edit by hand) -->'
const END = '<!-- structure:end -->'

function main(): number {
  const check = process.argv.includes('--check')
  const report = analyse(readImports())
  const doc = join(root, 'docs', 'STRUCTURE.md')
  const text = readFileSync(doc, 'utf8')
  const [before, rest] = text.split(BEGIN)
  const after = rest?.split(END)[1]
  if (after === undefined) {
    console.log(`docs/STRUCTURE.md lacks the markers ${BEGIN} … ${END}`)
    return 1
  }
  const fresh = `${before}${BEGIN}\n${render(report)}\n${END}${after}`
  const problems: string[] = []
  for (const n of report.unplaced) problems.push(`${n} is in no layer: add it to LAYERS in scripts/structure.ts`)
  for (const c of report.cycles) problems.push(`circle: ${c.join(' ↔ ')}`)
  for (const u of report.upward) problems.push(`import up the layers: ${u}`)
  for (const e of report.owedGone) problems.push(`owed import ${e} is gone: remove it from OWED in scripts/structure.ts`)
  if (check && fresh !== text) problems.push('docs/STRUCTURE.md is out of date: run `npx tsx scripts/structure.ts` and commit it')
  if (!check && fresh !== text) writeFileSync(doc, fresh)
  for (const e of report.owedSeen) console.log(`owed: ${e} (${OWED.find(o => o.edge === e)!.owner})`)
  for (const p of problems) console.log(p)
  const nodes = LAYERS.reduce((n, l) => n + l.nodes.length, 0)
  const edges = [...report.edges.values()].reduce((n, t) => n + t.size, 0)
  console.log(`${nodes} folders in ${LAYERS.length} layers, ${edges} folder imports: ${problems.length ? `${problems.length} problem(s)` : 'no circle, no import up the layers'}`)
  return problems.length ? 1 : 0
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(import.meta.filename)) process.exit(main())

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
  { name: 'shared', why: 'the protocol and domain concepts both sides use; imports nothing of ours', nodes: ['shared'] },
  { name: 'trainer glue', why: 'finds a Python and prepares data for the trainer (trainer/js)', nodes: ['trainer'] },
  { name: 'coordinator: pure core', why: 'decisions on data, no I/O: statistics, ratchet, scheduler, parsers and rules', nodes: [
    'coordinator/ratchet', 'coordinator/scheduler', 'coordinator/faults'] },
  { name: 'coordinator: storage and signals', why: 'SQLite, the git store, the event bus and audit log', nodes: [
    'coordinator/db', 'coordinator/git', 'coordinator/events'] },
  { name: 'coordinator: context', why: 'the Ctx every module receives (db, git, bus, settings, clock)', nodes: ['coordinator/context'] },
  { name: 'coordinator: domain', why: 'the state machine of a campaign: each folder writes its own tables', nodes: [
    'coordinator/auth', 'coordinator/campaigns', 'coordinator/dataset', 'coordinator/hypotheses', 'coordinator/classes', 'coordinator/review',
    'coordinator/workers', 'coordinator/units', 'coordinator/swarm'] },
  { name: 'coordinator: reads', why: 'what the dashboard and status page show; reads only', nodes: ['coordinator/dashboard', 'coordinator/status'] },
  { name: 'coordinator: API', why: 'tRPC routers: input schemas, auth, error mapping; call the domain', nodes: ['coordinator/api'] },
  { name: 'coordinator: edges', why: 'the HTTP server, the process, the CLI and the package entry', nodes: [
    'coordinator/http', 'coordinator/server', 'coordinator/coordinator', 'coordinator/cli', 'coordinator/index'] },
  { name: 'worker: core', why: 'pure or local pieces of a worker: agents, safety, hardware, workspace, sandbox', nodes: [
    'worker/agent', 'worker/safety', 'worker/hardware', 'worker/workspace', 'worker/sandbox', 'worker/runner', 'worker/ui', 'worker/swarm', 'worker/data', 'worker/client'] },
  { name: 'worker: loops', why: 'the experiment loop, join and solo, the doctor', nodes: ['worker/loop', 'worker/solo', 'worker/doctor'] },
  { name: 'worker: edges', why: 'the CLI and the package entry', nodes: ['worker/cli', 'worker/index'] },
]

/** Source roots: a package's name, its folder, and whether its top-level files are one node (a flat package). */
const ROOTS = [
  { pkg: 'shared', dir: 'shared/src', flat: true, specifier: '@autoresearch-grid/shared' },
  { pkg: 'trainer', dir: 'trainer/js', flat: true, specifier: '@autoresearch-grid/trainer' },
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
  if (own) return own.pkg === 'trainer' ? 'trainer/js/index.ts' : `${own.dir}/index.ts`
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

export interface Report {
  /** Folder-level edges; `typeOnly` when every import behind the edge brings only types. */
  edges: Map<string, Map<string, { typeOnly: boolean; examples: string[] }>>
  unplaced: string[]
  folderCycles: string[][]
  fileCycles: string[][]
  upward: string[]
}

export function analyse(imports: readonly Import[], layers = LAYERS): Report {
  const layerOf = new Map(layers.flatMap((l, i) => l.nodes.map(n => [n, i] as const)))
  const edges: Report['edges'] = new Map()
  const fileEdges = new Map<string, Set<string>>()
  const unplaced = new Set<string>()
  for (const i of imports) {
    addEdge(fileEdges, i.from, i.to)
    const a = nodeOf(i.from)
    const b = nodeOf(i.to)
    for (const [node, file] of [[a, i.from], [b, i.to]] as const) if (!node || !layerOf.has(node)) unplaced.add(node ?? file)
    if (!a || !b || a === b) continue
    if (!edges.has(a)) edges.set(a, new Map())
    const edge = edges.get(a)!.get(b) ?? { typeOnly: true, examples: [] }
    edge.typeOnly &&= i.typeOnly
    edge.examples.push(`${i.from} → ${i.to}`)
    edges.get(a)!.set(b, edge)
  }
  const folderEdges = new Map<string, Set<string>>()
  for (const [a, targets] of edges) for (const b of targets.keys()) addEdge(folderEdges, a, b)
  const upward: string[] = []
  for (const [a, targets] of edges) {
    for (const [b, edge] of targets) {
      const la = layerOf.get(a)
      const lb = layerOf.get(b)
      if (la !== undefined && lb !== undefined && lb > la) {
        upward.push(`${a} (${layers[la].name}) imports ${b} (${layers[lb].name}): ${edge.examples.join(', ')}`)
      }
    }
  }
  return { edges, unplaced: [...unplaced].sort(), folderCycles: cycles(folderEdges), fileCycles: cycles(fileEdges), upward: upward.sort() }
}

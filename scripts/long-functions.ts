// Lists the functions of the production code that run over the line limit (issue 18: a function a
// newcomer can read on one screen). `npx tsx scripts/long-functions.ts [limit] [folders…]`; exits
// 1 when any function is over the limit, so `npm test` can hold the line.
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import ts from 'typescript'

const root = join(import.meta.dirname, '..')
const args = process.argv.slice(2)
const limit = /^\d+$/.test(args[0] ?? '') ? Number(args.shift()) : 80
const folders = args.length > 0 ? args : ['worker/src', 'coordinator/src', 'shared/src']

function* files(dir: string): Generator<string> {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) yield* files(path)
    else if (/\.tsx?$/.test(name) && !name.endsWith('.d.ts')) yield path
  }
}

/** The name a reader would search for: `Class.method`, `function name`, `const name = () =>`. */
function nameOf(node: ts.Node): string {
  const named = node as ts.FunctionLikeDeclaration
  if (named.name && ts.isIdentifier(named.name)) {
    const owner = ts.isClassLike(node.parent) && node.parent.name ? `${node.parent.name.text}.` : ''
    return owner + named.name.text
  }
  if (ts.isVariableDeclaration(node.parent) && ts.isIdentifier(node.parent.name)) return node.parent.name.text
  if (ts.isPropertyAssignment(node.parent) && ts.isIdentifier(node.parent.name)) return node.parent.name.text
  return '(anonymous)'
}

const long: string[] = []
for (const folder of folders) {
  for (const file of files(join(root, folder))) {
    const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true)
    const visit = (node: ts.Node) => {
      if (ts.isFunctionLike(node) && (node as ts.FunctionLikeDeclaration).body) {
        const start = source.getLineAndCharacterOfPosition(node.getStart(source)).line
        const end = source.getLineAndCharacterOfPosition(node.getEnd()).line
        const lines = end - start + 1
        if (lines > limit) long.push(`${relative(root, file)}:${start + 1}  ${nameOf(node)}  ${lines} lines`)
      }
      ts.forEachChild(node, visit)
    }
    visit(source)
  }
}

for (const line of long) console.log(line)
console.log(`${long.length} function${long.length === 1 ? '' : 's'} over ${limit} lines in ${folders.join(', ')}`)
process.exit(long.length === 0 ? 0 : 1)

import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { execa } from 'execa'
import { bidiControlIn, runtimeFile } from '@autoresearch-grid/shared'

/** The ast checker shipped with the worker (see its docstring for the policy). */
export const CHECKER = runtimeFile('safetyChecker', () => fileURLToPath(new URL('../../safety/check_train.py', import.meta.url)))

export interface Violation {
  file: string
  line: number
  message: string
}

export interface SafetyVerdict {
  ok: boolean
  violations: Violation[]
}

/**
 * Pure: the candidate may change only the editable files, and must keep them all. A file that is
 * not editable appearing, or an editable one vanishing, is refused before anything else looks at
 * the code.
 */
export function changedFilesProblems(parent: Record<string, string>, candidate: Record<string, string>, editable: readonly string[]): Violation[] {
  const out: Violation[] = []
  for (const name of Object.keys(candidate)) {
    if (!editable.includes(name)) out.push({ file: name, line: 0, message: `${name} is not an editable file (editable: ${editable.join(', ')})` })
  }
  for (const name of editable) {
    if (name in parent && !(name in candidate)) out.push({ file: name, line: 0, message: `${name} was deleted; editable files may change but not disappear` })
  }
  return out
}

/** One line per violation, for agentNotes and logs. */
export function describeViolations(violations: readonly Violation[]): string {
  return violations.map(v => `${v.file}${v.line ? `:${v.line}` : ''}: ${v.message}`).join('\n')
}

/**
 * Runs the static policy over the Python files of a candidate. The files are written to a fresh
 * temporary folder (never the run directory) and only parsed there. The checker runs with `-I`:
 * no user site, no environment, no current directory on the path, so nothing next to the files
 * can shadow a module it imports.
 */
export async function checkSource(python: string, files: Record<string, string>, parent: Record<string, string>, editable: readonly string[]): Promise<SafetyVerdict> {
  const structural = changedFilesProblems(parent, files, editable)
  if (structural.length) return { ok: false, violations: structural }
  const hidden = bidiControlIn(files)
  if (hidden) return { ok: false, violations: [hidden] }
  const pyFiles = Object.keys(files).filter(n => n.endsWith('.py'))
  if (pyFiles.length === 0) return { ok: true, violations: [] }
  const dir = await mkdtemp(join(tmpdir(), 'arg-safety-'))
  try {
    for (const name of pyFiles) {
      if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/.test(name)) return { ok: false, violations: [{ file: name, line: 0, message: 'not a plain file name' }] }
      await writeFile(join(dir, name), files[name])
    }
    const r = await execa(python, ['-I', '-B', CHECKER, ...pyFiles.map(n => join(dir, n))], { reject: false, stdin: 'ignore', timeout: 60_000, extendEnv: false, env: { PATH: process.env.PATH ?? '' } })
    const line = String(r.stdout).trim().split('\n').pop() ?? ''
    try {
      const parsed = JSON.parse(line) as SafetyVerdict
      if (typeof parsed.ok === 'boolean' && Array.isArray(parsed.violations)) return parsed
    } catch {
      // fall through: a checker that prints no verdict is a refusal, not a pass
    }
    return { ok: false, violations: [{ file: pyFiles.join(', '), line: 0, message: `the safety checker failed (${r.timedOut ? 'timed out' : `exit ${r.exitCode}`}): ${String(r.stderr).trim().split('\n').pop() ?? ''}` }] }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

/**
 * The one door to running code: checks first, runs only on a pass. `run` is never called for a
 * candidate that fails the policy.
 */
export async function runIfSafe<T>(o: { python: string; files: Record<string, string>; parent: Record<string, string>; editable: readonly string[]; run: () => Promise<T> }): Promise<{ verdict: SafetyVerdict; result: T | null }> {
  const verdict = await checkSource(o.python, o.files, o.parent, o.editable)
  if (!verdict.ok) return { verdict, result: null }
  return { verdict, result: await o.run() }
}

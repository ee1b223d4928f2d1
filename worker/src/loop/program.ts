import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { DEFAULT_PROGRAM } from '../agent/prompt.ts'

/**
 * The research direction for the agent: the file given, else program.md next to the trainer (the
 * checkout's top level), else a built-in default.
 */
export async function readProgram(trainerDir: string, explicit?: string): Promise<string> {
  if (explicit) {
    try {
      return await readFile(explicit, 'utf8')
    } catch (err) {
      throw new Error(`cannot read the program file ${explicit}: ${(err as Error).message}`)
    }
  }
  for (const candidate of [join(trainerDir, '..', 'program.md'), join(trainerDir, 'program.md')]) {
    if (existsSync(candidate)) return readFile(candidate, 'utf8')
  }
  return DEFAULT_PROGRAM
}

/** The locked files an agent may read (prepare.py), from the trainer the worker runs. */
export async function readLocked(trainerDir: string, names: readonly string[] = ['prepare.py']): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  for (const n of names) {
    const text = await readFile(join(trainerDir, n), 'utf8').catch(() => null)
    if (text !== null) out[n] = text
  }
  return out
}

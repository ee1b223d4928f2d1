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

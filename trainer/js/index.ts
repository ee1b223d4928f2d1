import { fileURLToPath } from 'node:url'

export { findPython, PythonNotFoundError, DEFAULT_CANDIDATES, type FoundPython } from './find-python.ts'
export { ensurePrepared, PrepareError } from './prepare.ts'
export { parseDescription, type DataDescription } from './describe.ts'

/** The trainer that ships with this checkout (prepare.py, train.py). */
export function defaultTrainerDir(): string {
  return fileURLToPath(new URL('..', import.meta.url))
}

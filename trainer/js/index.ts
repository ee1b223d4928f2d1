import { fileURLToPath } from 'node:url'
import { runtimeFile } from '@autoresearch-grid/shared'

export { findPython, PythonNotFoundError, DEFAULT_CANDIDATES, TORCH_VERSION_PY, type FoundPython } from './find-python.ts'
export { ensurePrepared, describePrepared, embeddedCorpusEnv, PrepareError } from './prepare.ts'
export { parseDescription, type DataDescription } from './describe.ts'

/** The trainer that ships with this checkout (prepare.py, train.py). */
export function defaultTrainerDir(): string {
  return runtimeFile('trainer', () => fileURLToPath(new URL('..', import.meta.url)))
}

import { createHash } from 'node:crypto'

/**
 * The identity of a candidate's code: sha256 over the editable files, sorted by name. The
 * coordinator stores it with every experiment and the worker asks `worker.known` with it before
 * training, so both sides must compute it the same way: hence here, once.
 */
export function sourceHash(files: Record<string, string>): string {
  const h = createHash('sha256')
  for (const name of Object.keys(files).sort()) h.update(name).update('\0').update(files[name]).update('\0')
  return h.digest('hex')
}

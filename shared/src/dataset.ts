import { z } from 'zod'

/**
 * A prepared data set as the coordinator serves it (campaigns with a `served` source): the files of
 * prepare.py's data folder, each with its size and sha256, so a worker downloads each file once,
 * resumes an interrupted download with an HTTP Range request, and checks every byte. The set is
 * content-addressed: its id is a hash over the files, so a worker keeps one copy per id and the
 * loops of one machine share it.
 *
 * `role` says who may read a file: `train` (the training run: train.bin, train_docs.npy),
 * `eval` (only the trusted evaluator: val.bin, val_docs.npy — never mounted into the training
 * sandbox) and `shared` (both: tokenizer.model, token_bytes.npy, meta.json).
 */
export const DatasetFile = z.object({
  name: z.string().regex(/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/),
  size: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  role: z.enum(['train', 'eval', 'shared']),
})
export type DatasetFile = z.infer<typeof DatasetFile>

export const DatasetManifest = z.object({
  /** sha256 over the files' names, sizes and hashes (datasetId). */
  id: z.string().regex(/^[0-9a-f]{64}$/),
  files: z.array(DatasetFile).min(1).max(64),
})
export type DatasetManifest = z.infer<typeof DatasetManifest>

/** Who reads a file of prepare.py's data folder (see DatasetFile). */
export function fileRole(name: string): DatasetFile['role'] {
  if (name.startsWith('val')) return 'eval'
  if (name.startsWith('train')) return 'train'
  return 'shared'
}

/** The id of a set of files: independent of their order. Pure; computed by both sides. */
export function datasetId(files: readonly Omit<DatasetFile, 'role'>[], hash: (text: string) => string): string {
  return hash([...files].sort((a, b) => (a.name < b.name ? -1 : 1)).map(f => `${f.name} ${f.size} ${f.sha256}\n`).join(''))
}

/**
 * The byte range a `Range` header asks of a file of `size` bytes: a single `bytes=a-b`, `bytes=a-`
 * or `bytes=-n`. Null when there is no header or it asks for several ranges (the whole file is
 * sent), 'unsatisfiable' when it starts past the end (416).
 */
export function parseRange(header: string | undefined, size: number): { start: number; end: number } | null | 'unsatisfiable' {
  if (!header) return null
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim())
  if (!m || (m[1] === '' && m[2] === '')) return null
  if (m[1] === '') {
    const n = Number(m[2])
    if (n === 0) return 'unsatisfiable'
    return { start: Math.max(0, size - n), end: size - 1 }
  }
  const start = Number(m[1])
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1)
  if (start >= size || end < start) return 'unsatisfiable'
  return { start, end }
}

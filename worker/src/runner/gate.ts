import { copyFile, link, mkdir, rename, rm } from 'node:fs/promises'
import { join } from 'node:path'

/**
 * The training split is handed over only when the worker starts its clock (docs/SECURITY.md,
 * "The worker's clock"). A run's data folder (the gate) holds the data set's description from the
 * start — meta.json, the tokenizer, token byte lengths — and nothing to train on: start-up
 * (imports, building and compiling the model on made-up tokens) cannot learn from the data, so it
 * may run off the clock, even while another run trains. When train.py asks for the training split
 * (prepare.py prints its ready line and waits), `release` moves the split in: a rename within one
 * folder, instant whatever the data's size, because the files were staged beside the gate before.
 */

/** Mounted from the start: what the data is, not the data. */
export const DESCRIPTION_FILES = ['meta.json', 'token_bytes.npy', 'tokenizer.model'] as const
/** Handed over when the clock starts. train.bin last: prepare.py waits for it, and then reads both. */
export const TRAINING_SPLIT = ['train_docs.npy', 'train.bin'] as const

export interface DataGate {
  /** The folder the run sees as its data set. */
  dir: string
  /** Puts the training split in place; resolves when it is there. */
  release(): Promise<void>
  /** Removes the gate and its staging folder. */
  remove(): Promise<void>
}

/** A hard link where the file system allows one (no copy, no space), else a copy. */
async function place(from: string, to: string): Promise<void> {
  try {
    await link(from, to)
  } catch {
    await copyFile(from, to)
  }
}

/** Prepares `<base>.data` (the gate) and `<base>.staged` beside it for the data set in `dataDir`. */
export async function openGate(dataDir: string, base: string): Promise<DataGate> {
  const dir = `${base}.data`
  const staged = `${base}.staged`
  await Promise.all([rm(dir, { recursive: true, force: true }), rm(staged, { recursive: true, force: true })])
  await Promise.all([mkdir(dir, { recursive: true }), mkdir(staged, { recursive: true })])
  await Promise.all(DESCRIPTION_FILES.map(f => place(join(dataDir, f), join(dir, f))))
  await Promise.all(TRAINING_SPLIT.map(f => place(join(dataDir, f), join(staged, f))))
  return {
    dir,
    async release() {
      for (const f of TRAINING_SPLIT) await rename(join(staged, f), join(dir, f))
    },
    async remove() {
      await Promise.all([rm(dir, { recursive: true, force: true }), rm(staged, { recursive: true, force: true })])
    },
  }
}

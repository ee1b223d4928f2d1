/** What `prepare.py` (and `prepare.py --check`) says about a prepared data set. */
export interface DataDescription {
  fingerprint: string
  tokenizerPath: string
  dataDir: string
  vocabSize: number | null
  profile: string | null
}

/**
 * Pure: reads the `key: value` lines prepare.py ends with. Later lines win, so progress chatter
 * before the description cannot shadow it.
 */
export function parseDescription(output: string): DataDescription {
  const values = new Map<string, string>()
  for (const line of output.split(/\r?\n/)) {
    const m = /^([a-z_]+):\s+(.+?)\s*$/.exec(line)
    if (m) values.set(m[1], m[2])
  }
  const fingerprint = values.get('fingerprint')
  const tokenizerPath = values.get('tokenizer')
  const missing = [!fingerprint && 'fingerprint', !tokenizerPath && 'tokenizer'].filter(Boolean)
  if (missing.length) throw new Error(`prepare.py printed no ${missing.join(' and no ')} line`)
  if (!/^[0-9a-f]{16,128}$/.test(fingerprint!)) throw new Error(`prepare.py printed a malformed fingerprint: "${fingerprint}"`)
  const vocab = Number(values.get('vocab_size'))
  return {
    fingerprint: fingerprint!,
    tokenizerPath: tokenizerPath!,
    dataDir: values.get('data_dir') ?? '',
    vocabSize: Number.isInteger(vocab) && vocab > 0 ? vocab : null,
    profile: values.get('profile') ?? null,
  }
}

import { createHash, randomBytes } from 'node:crypto'

/** Tokens are shown once and stored as a SHA-256 hash; the prefix says what a token is for. */
export function newToken(kind: 'worker' | 'admin'): string {
  return `arg_${kind === 'admin' ? 'adm' : 'wrk'}_${randomBytes(24).toString('base64url')}`
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex')
}

/** Reads `Authorization: Bearer <token>` or a bare token. */
export function bearer(header: unknown): string | null {
  if (typeof header !== 'string' || header.length === 0 || header.length > 512) return null
  const m = /^Bearer\s+(\S+)$/i.exec(header.trim())
  return m ? m[1] : header.trim()
}

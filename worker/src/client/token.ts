import { readFileSync, statSync } from 'node:fs'

/**
 * The worker token, from a file (`--token-file`, mode 0600), the environment (AUTORESEARCH_TOKEN)
 * or, last, the command line. A command line is readable by every user of the machine (`ps`,
 * /proc/<pid>/cmdline), so the worker never puts the token on one itself; the sandbox has its own
 * PID namespace and cannot see the worker's either way.
 */
export function readToken(o: { token?: string; tokenFile?: string }, env: NodeJS.ProcessEnv = process.env): string {
  if (o.tokenFile) {
    let text: string
    try {
      const mode = statSync(o.tokenFile).mode & 0o777
      if (mode & 0o077) throw new Error(`${o.tokenFile} is readable by others (mode ${mode.toString(8)}): chmod 600 ${o.tokenFile}`)
      text = readFileSync(o.tokenFile, 'utf8')
    } catch (err) {
      throw new Error(`--token-file: ${(err as Error).message}`)
    }
    const token = text.trim()
    if (!token) throw new Error(`--token-file: ${o.tokenFile} is empty: put the worker token from the maintainer in it`)
    return token
  }
  const token = o.token || env.AUTORESEARCH_TOKEN
  if (!token) throw new Error('no worker token: ask the maintainer for one, then pass --token-file FILE (mode 0600) or set AUTORESEARCH_TOKEN')
  return token
}

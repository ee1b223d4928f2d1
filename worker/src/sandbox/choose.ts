import { detectSandbox } from './detect.ts'
import type { HostLayout } from './bwrap.ts'

/** What the worker runs campaign code in, and how it says so at start-up. */
export interface SandboxChoice {
  host: HostLayout | null
  how: string
}

/** The flag a volunteer passes to run other people's code without a sandbox, knowing what it means. */
export const UNSAFE_FLAG = '--unsafe-no-sandbox'

/** The worker will not take work on this machine as it stands; the message says what to do. */
export class RefusedWorkError extends Error {
  override name = 'RefusedWorkError'
}

export class NoSandboxError extends RefusedWorkError {
  override name = 'NoSandboxError'
}

/**
 * The sandbox, or a refusal that names the fix. Every unit runs code written by other contributors
 * (a verification re-runs theirs; every best is someone's), so without a sandbox the worker refuses
 * work unless the volunteer passed UNSAFE_FLAG. `worker solo` runs the volunteer's own research and
 * may go on without one (`allowWithout`), saying so.
 */
export async function chooseSandbox(python: string, o: { unsafeNoSandbox?: boolean; allowWithout?: boolean } = {}): Promise<SandboxChoice> {
  if (o.unsafeNoSandbox) {
    return { host: null, how: `NO SANDBOX (${UNSAFE_FLAG}): campaign code runs as your user, with your files, network and credentials` }
  }
  const found = await detectSandbox(python)
  if (found.ok) return { host: found.host, how: found.how }
  const why = `no sandbox: ${found.problem}.\nFix: ${found.fix}`
  if (o.allowWithout) return { host: null, how: `WARNING: ${why}\nThe trainer runs unsandboxed, as your user.` }
  throw new NoSandboxError(
    `refusing to run other contributors' code: ${why}\n` +
    `Or, knowing that their train.py then runs as your user with everything you can reach (files, network, ` +
    `keys, the worker's token), pass ${UNSAFE_FLAG}. Run \`worker doctor\` to check again.`,
  )
}

/**
 * The trainer runs as the leader of its own process group, so one signal reaches it and everything
 * it started (dataloader workers, compile workers, a stray shell).
 */

/** Sends a signal to a whole group; a group that is already gone is not an error. */
export function signalGroup(pgid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pgid, signal)
    return true
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false
    throw err
  }
}

/** Whether any process of the group is still alive. */
export function groupAlive(pgid: number): boolean {
  return signalGroup(pgid, 0)
}

const live = new Set<number>()
let exitHookInstalled = false

/**
 * Detached groups outlive the worker unless someone kills them; this makes sure a worker that exits
 * (normally or through `process.exit`) takes its trainers with it.
 */
export function trackGroup(pgid: number): () => void {
  if (!exitHookInstalled) {
    exitHookInstalled = true
    process.on('exit', () => {
      for (const g of live) signalGroup(g, 'SIGKILL')
    })
  }
  live.add(pgid)
  return () => live.delete(pgid)
}

import { join } from 'node:path'
import { openWorkspace, type Workspace } from '../workspace/git.ts'

/**
 * One local git workspace per unit in flight (as many as the pipeline's depth: the one training
 * and those the agents prepare), so the agents' edits for later units never touch the files of the
 * one being trained, nor each other's. Opened on demand and reused.
 */
export class WorkspacePool {
  private free: Workspace[] = []
  private waiting: ((w: Workspace) => void)[] = []
  private opened = 0

  constructor(private readonly root: string, private readonly size: number) {}

  async acquire(): Promise<Workspace> {
    const ready = this.free.pop()
    if (ready) return ready
    if (this.opened < this.size) return openWorkspace(join(this.root, String(this.opened++)))
    return new Promise(resolve => this.waiting.push(resolve))
  }

  release(w: Workspace): void {
    const next = this.waiting.shift()
    if (next) next(w)
    else this.free.push(w)
  }
}

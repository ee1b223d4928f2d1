/**
 * The agent's work and the GPU's, overlapped: candidates are prepared (several at once, each in its
 * own workspace) while the GPU trains one at a time. `depth` is how many units may be in hand at
 * once, fetched and not yet trained: 1 is the simple loop (prepare, train, prepare, …), 2 keeps a
 * spare that the agent prepares while the GPU trains, more lets several slow agent proposals run
 * side by side so that one is ready whenever the GPU frees up (loop/depth.ts chooses it).
 *
 * The trainer takes candidates in the order they become ready, so one slow proposal does not hold
 * up a faster one; `order: 'arrival'` trains them in the order the units came instead, for loops
 * whose units depend on that order (solo: the baseline first).
 */
export interface PipelineOptions<U, P> {
  /** The next unit to work on; null ends the pipeline. Called only while there is room in hand. */
  next(): Promise<U | null>
  /** The agent's phase. */
  prepare(unit: U): Promise<P>
  /** The GPU's phase. */
  train(prepared: P): Promise<void>
  /** What to do when one unit's phase fails; the pipeline carries on with the next one. */
  onError(unit: U, err: unknown): void
  /** Most units in hand at once (at least 1); a function is read again whenever there may be room. */
  depth: number | (() => number)
  /** Receives a function to call when `depth()` may have grown while nothing else happened. */
  onDepthChange?(recheck: () => void): void
  order?: 'ready' | 'arrival'
  /**
   * Units in the GPU phase at once (default 1). 2 lets the next unit's trainer start up — imports,
   * CUDA, compiling its model, all off the worker's clock — while the current one trains; the GPU
   * itself is still taken in turns (runner/lane.ts).
   */
  gpuSlots?: number
  signal?: AbortSignal
}

interface InHand<U, P> {
  unit: U
  prepared: P | null
  /** When it became ready, in sequence; 0 while being prepared. */
  ready: number
}

export async function runPipeline<U, P>(o: PipelineOptions<U, P>): Promise<void> {
  const depth = typeof o.depth === 'number' ? () => o.depth as number : o.depth
  /** Fetched and not yet training, in arrival order. */
  const inHand: InHand<U, P>[] = []
  let fetching = 0
  let training = 0
  const gpuSlots = Math.max(1, o.gpuSlots ?? 1)
  let ended = false
  /** An error that escaped a phase (a bug, or onError throwing): it stops the pipeline. */
  const failures: unknown[] = []
  let readySeq = 0
  const tasks = new Set<Promise<void>>()
  let wake: (() => void) | null = null
  const changed = () => {
    const w = wake
    wake = null
    w?.()
  }
  o.onDepthChange?.(changed)
  /** Runs a phase in the background. */
  const spawn = (work: () => Promise<void>) => {
    const task = work().catch(err => { failures.push(err) }).finally(() => {
      tasks.delete(task)
      changed()
    })
    tasks.add(task)
  }

  const fetchAndPrepare = async () => {
    let unit: U | null
    try {
      unit = await o.next()
    } finally {
      fetching--
    }
    if (unit === null) {
      ended = true
      return
    }
    const entry: InHand<U, P> = { unit, prepared: null, ready: 0 }
    inHand.push(entry)
    try {
      entry.prepared = await o.prepare(unit)
      entry.ready = ++readySeq
    } catch (err) {
      inHand.splice(inHand.indexOf(entry), 1)
      o.onError(unit, err)
    }
  }

  const train = async (entry: InHand<U, P>) => {
    try {
      await o.train(entry.prepared as P)
    } catch (err) {
      o.onError(entry.unit, err)
    } finally {
      training--
    }
  }

  const pick = (): InHand<U, P> | null => {
    if (o.order === 'arrival') return inHand[0]?.ready ? inHand[0] : null
    let first: InHand<U, P> | null = null
    for (const e of inHand) if (e.ready && (!first || e.ready < first.ready)) first = e
    return first
  }

  try {
    for (;;) {
      if (failures.length) throw failures[0]
      const stopping = o.signal?.aborted ?? false
      while (!stopping && !ended && fetching + inHand.length + training < Math.max(1, depth())) {
        fetching++
        spawn(fetchAndPrepare)
      }
      const next: InHand<U, P> | null = training >= gpuSlots || stopping ? null : pick()
      if (next) {
        inHand.splice(inHand.indexOf(next), 1)
        training++
        spawn(() => train(next))
        continue
      }
      if (training === 0 && (stopping || (ended && fetching === 0 && inHand.length === 0))) break
      await new Promise<void>(resolve => { wake = resolve })
    }
  } finally {
    // Units still being prepared when the pipeline stops are not trained; wait for their agents so
    // nothing keeps running after the loop returns (`next` answers null once the signal aborted).
    // After a failure, return at once: a `next` waiting for work would keep us here.
    while (tasks.size && !failures.length) await Promise.allSettled([...tasks])
  }
  if (failures.length) throw failures[0]
}

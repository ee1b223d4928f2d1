/**
 * Two lanes: the agent prepares unit N+1 while the GPU trains unit N, so with an agent slower than
 * a training run the GPU still never waits for it. With `pipelined: false` each unit is prepared
 * only after the previous one finished training (the simple loop, for comparison and for workers
 * that prefer not to hold a spare unit).
 */
export interface PipelineOptions<U, P> {
  /** The next unit to work on; null ends the pipeline. Called at most once ahead of training. */
  next(): Promise<U | null>
  /** The agent's phase. */
  prepare(unit: U): Promise<P>
  /** The GPU's phase. */
  train(prepared: P): Promise<void>
  /** What to do when one unit's phase fails; the pipeline carries on with the next one. */
  onError(unit: U, err: unknown): void
  pipelined: boolean
  signal?: AbortSignal
}

export async function runPipeline<U, P>(o: PipelineOptions<U, P>): Promise<void> {
  type Ahead = { unit: U; prepared: P | null } | null
  const fetchAndPrepare = async (): Promise<Ahead> => {
    const unit = await o.next()
    if (!unit) return null
    try {
      return { unit, prepared: await o.prepare(unit) }
    } catch (err) {
      o.onError(unit, err)
      return { unit, prepared: null }
    }
  }
  let ahead: Promise<Ahead> | null = null
  try {
    while (!o.signal?.aborted) {
      const current: Ahead = await (ahead ?? fetchAndPrepare())
      ahead = null
      if (!current) break
      if (current.prepared === null) continue
      if (o.pipelined && !o.signal?.aborted) ahead = fetchAndPrepare()
      try {
        await o.train(current.prepared)
      } catch (err) {
        o.onError(current.unit, err)
      }
    }
  } finally {
    // A unit prepared ahead when the pipeline stops is simply not trained; wait for its agent so
    // nothing keeps running after the loop returns.
    if (ahead) await ahead.catch(() => null)
  }
}

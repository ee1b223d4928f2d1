/**
 * The life cycles of the coordinator's records, defined once so the database schema, the API and
 * the worker's tools spell them alike (coordinator/src/db/schema.ts documents each column).
 */

/** A work unit: queued → leased → done, or cancelled (a lease that expires returns it to queued). */
export const UNIT_STATES = ['queued', 'leased', 'done', 'cancelled'] as const
export type UnitState = (typeof UNIT_STATES)[number]

/**
 * An experiment (one reported run). Candidates go pending → merging → kept (or awaiting-review
 * first), or discarded / stale; baselines and verifications are `measured`; a run that failed is
 * crash, rejected (its number must not count) or rejected-unsafe (never run).
 */
export const EXPERIMENT_STATUSES = ['pending', 'merging', 'awaiting-review', 'kept', 'discarded', 'measured', 'crash', 'rejected', 'rejected-unsafe', 'stale'] as const
export type ExperimentStatus = (typeof EXPERIMENT_STATUSES)[number]

/** The statuses of a run that produced no number the ratchet may use. */
export const FAILED_STATUSES = ['crash', 'rejected', 'rejected-unsafe'] as const satisfies readonly ExperimentStatus[]

/** A hypothesis: open → in-progress → tested | merged | rejected; a near-copy of another is a duplicate. */
export const HYPOTHESIS_STATUSES = ['open', 'in-progress', 'tested', 'merged', 'rejected', 'duplicate'] as const
export type HypothesisStatus = (typeof HYPOTHESIS_STATUSES)[number]

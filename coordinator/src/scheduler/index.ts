/** Which unit of work an idle worker gets: a pure choice over a snapshot of the queue. */
export {
  DEFAULT_SCHEDULER_SETTINGS,
  EXPLORABLE_STATUSES,
  nextUnit,
  type HypothesisState,
  type NextUnit,
  type QueuedUnit,
  type SchedulerInput,
  type SchedulerSettings,
  type UnitKind,
  CREDIT_PER_RUN_RECEIVED,
  VERIFY_CREDIT,
  verifyCredit,
} from './next-unit.ts'

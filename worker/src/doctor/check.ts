/** One line of `worker doctor`'s report (checks.ts), apart so that each check's module can name it. */

export type Level = 'ok' | 'warn' | 'fail'

export interface Check {
  name: string
  level: Level
  detail: string
  /** What to do about it (absent when ok). */
  fix?: string
}

/**
 * Record ids: a one-letter prefix that says what the id names (`u` unit, `e` experiment, `h`
 * hypothesis, `w` worker, `m` merge, `c` contributor, `t` token, `r` review), the time in base 36
 * so ids sort roughly by creation, and six random base-36 digits so two made in one millisecond
 * differ. Ids are not secrets: lease tokens and API tokens come from node:crypto.
 */
export function newId(prefix: string): string {
  return `${prefix}_${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`
}

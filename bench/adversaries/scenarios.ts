/** The adversary table's rows (issue 15): each adversary of one or two contributors against 4 honest researchers. */
import { ROLES } from './roles.ts'
import type { Scenario } from './play.ts'

export function scenarios(units: number, seed: number): Scenario[] {
  const one = (key: keyof typeof ROLES, names = ['mallory']): Scenario =>
    ({ name: ROLES[key].name, teams: [{ role: ROLES[key], names }], honest: 4, units, seed })
  return [
    { name: 'no adversary (control)', teams: [], honest: 4, units, seed },
    one('forgerAboveCap'),
    one('forgerBelowCap'),
    one('sybil', ['mallory', 'mallory-2']),
    one('pairInventedClass', ['mallory', 'trudy']),
    one('saboteurVerifier'),
    one('lowballReporter'),
    one('sigmaPoisoner'),
  ]
}

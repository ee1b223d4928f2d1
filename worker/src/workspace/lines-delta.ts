/**
 * Pure: added minus removed lines from `git diff --numstat` output. Negative means the candidate is
 * shorter than its parent, which the ratchet rewards as a simplification at equal val_bpb.
 * Binary files (`-\t-\tname`) count as zero.
 */
export function linesDeltaFromNumstat(numstat: string): number {
  let delta = 0
  for (const line of numstat.split('\n')) {
    const m = /^(\d+)\t(\d+)\t/.exec(line)
    if (m) delta += Number(m[1]) - Number(m[2])
  }
  return delta
}

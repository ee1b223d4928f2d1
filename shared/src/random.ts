/**
 * The one seeded pseudo-random generator of the project, for simulations, property tests, the
 * heuristic researcher's choices and the benches: the same seed gives the same sequence on every
 * machine, so a number printed in docs/RATCHET.md or a researcher's pick can be reproduced.
 * Not for anything secret (lease tokens come from node:crypto). Where a plain
 * `() => number` is wanted, `createRng(seed).next` is one.
 */

export interface Rng {
  /** Uniform in [0, 1). */
  next(): number
  /** Gaussian with the given mean and standard deviation (Box–Muller, caching the second value). */
  normal(mean?: number, sd?: number): number
  /** Uniform integer in [0, n). */
  int(n: number): number
  /** Uniform in [lo, hi). */
  uniform(lo: number, hi: number): number
  /** True with probability p. */
  chance(p: number): boolean
}

/** splitmix32 step: spreads a (possibly small, sequential) seed over all 32 bits. */
function mix32(x: number): number {
  x = (x + 0x9e3779b9) | 0
  let z = x
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b)
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35)
  return (z ^ (z >>> 16)) >>> 0
}

/**
 * sfc32 (Chris Doty-Humphrey's small fast chaotic generator): 128 bits of state, passes the usual
 * statistical batteries, and needs only 32-bit integer arithmetic, which JavaScript does exactly.
 */
export function createRng(seed: number): Rng {
  if (!Number.isFinite(seed)) throw new RangeError(`seed must be a finite number, got ${seed}`)
  let s = Math.trunc(seed) >>> 0
  let a = (s = mix32(s))
  let b = (s = mix32(s))
  let c = (s = mix32(s))
  let counter = 1
  const nextUint32 = (): number => {
    const t = (((a + b) | 0) + counter) | 0
    counter = (counter + 1) | 0
    a = b ^ (b >>> 9)
    b = (c + (c << 3)) | 0
    c = (c << 21) | (c >>> 11)
    c = (c + t) | 0
    return t >>> 0
  }
  // The first outputs of a freshly seeded chaotic generator are still correlated with the seed.
  for (let i = 0; i < 12; i++) nextUint32()

  const next = (): number => nextUint32() / 4294967296
  let spare: number | undefined
  const standardNormal = (): number => {
    if (spare !== undefined) {
      const v = spare
      spare = undefined
      return v
    }
    let u = 0
    while (u === 0) u = next() // log(0) would be −∞
    const r = Math.sqrt(-2 * Math.log(u))
    const theta = 2 * Math.PI * next()
    spare = r * Math.sin(theta)
    return r * Math.cos(theta)
  }

  return {
    next,
    normal: (m = 0, sd = 1) => m + sd * standardNormal(),
    int: n => {
      if (!(Number.isInteger(n) && n > 0)) throw new RangeError(`int(n) needs a positive integer, got ${n}`)
      return Math.floor(next() * n)
    },
    uniform: (lo, hi) => lo + (hi - lo) * next(),
    chance: p => next() < p,
  }
}

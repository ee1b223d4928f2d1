import type { Hardware } from '@autoresearch-grid/shared'

/**
 * Malformed tRPC traffic, generated from a seed so a failure can be replayed: garbage that is not
 * JSON, JSON of the wrong shape, valid shapes with wrongly typed fields, strings over their limits
 * and whole messages near and over the 1 MiB limit, deep nesting, unknown procedures, ids that do
 * not exist or look like paths and SQL, batches over the limit. Everything here must be refused.
 */
export const MESSAGE_LIMIT = 1024 * 1024

export const HOSTILE_STRINGS = ['../../etc/passwd', "'; DROP TABLE workers;--", '<script>alert(1)</script>', '\u0000\u0001', '\ud800', '%00', '${process.exit()}']

const CPU: Hardware = { gpus: [], cpu: { model: 'fuzz', cores: 2, arch: 'x86_64' }, platform: 'linux', torch: null, hardwareClass: 'cpu-x86_64' }

/** Valid inputs of the worker procedures (for a worker id that exists), to be broken one field at a time. */
export function templates(workerId: string): { path: string; type: 'query' | 'mutation' | 'subscription'; input: Record<string, unknown> }[] {
  const report = { unitId: 'u_x', leaseToken: 'x', status: 'ok', source: { 'train.py': 'x' }, description: 'd', diff: '', metrics: null, logTail: '',
    timings: { agentSeconds: 0, runSeconds: 0 } }
  return [
    { path: 'worker.hello', type: 'mutation', input: { name: 'fuzz', hardware: CPU, fingerprints: {}, version: 't' } },
    { path: 'worker.heartbeat', type: 'mutation', input: { workerId, units: [{ unitId: 'u_x', leaseToken: 'x', progress: null }] } },
    { path: 'worker.report', type: 'mutation', input: { workerId, report } },
    { path: 'worker.propose', type: 'mutation', input: { workerId, campaign: 'demo', hypotheses: [{ title: 'an idea', body: '' }] } },
    { path: 'worker.known', type: 'query', input: { workerId, campaign: 'demo', sourceHash: 'a'.repeat(64) } },
    { path: 'worker.campaign', type: 'query', input: { name: 'demo' } },
    { path: 'worker.assignments', type: 'subscription', input: { workerId, capacity: 1 } },
  ]
}

/** A value of another JSON type than `v` (so the field cannot validate by chance). */
function otherType(v: unknown, r: () => number): unknown {
  const pool: unknown[] = [42, -1, 1e308, 0.5, true, null, 'x', HOSTILE_STRINGS[Math.floor(r() * HOSTILE_STRINGS.length)], [], [1, 'a'], {}, JSON.parse('{"__proto__":{"polluted":true}}')]
  const kind = (x: unknown) => (x === null ? 'null' : Array.isArray(x) ? 'array' : typeof x)
  const candidates = pool.filter(x => kind(x) !== kind(v) && !(kind(v) === 'number' && kind(x) === 'number'))
  return candidates[Math.floor(r() * candidates.length)]
}

function paths(v: unknown, prefix: string[] = []): string[][] {
  if (v === null || typeof v !== 'object') return [prefix]
  const own = Object.keys(v as object).flatMap(k => paths((v as Record<string, unknown>)[k], [...prefix, k]))
  return prefix.length ? [prefix, ...own] : own
}

/** The template with one field (at any depth) replaced by a value of another type. */
export function wronglyTyped(input: Record<string, unknown>, r: () => number): Record<string, unknown> {
  const copy = structuredClone(input)
  // Fields that may be null take null, so they are left alone: any other type breaks them.
  const all = paths(copy).filter(p => !['torch', 'progress', 'metrics'].includes(p[p.length - 1]))
  const path = all[Math.floor(r() * all.length)]
  let at = copy as Record<string, unknown>
  for (const k of path.slice(0, -1)) at = at[k] as Record<string, unknown>
  const key = path[path.length - 1]
  at[key] = otherType(at[key], r)
  return copy
}

/** Nested arrays `depth` deep: cheap to send, a stack overflow for any recursive code that touches it. */
export function deep(depth: number): string {
  return '['.repeat(depth) + ']'.repeat(depth)
}

/** A JSON text of about `bytes` bytes whose one string field is far over every field limit. */
export function huge(bytes: number, shape: (s: string) => unknown): string {
  const base = JSON.stringify(shape('')).length
  return JSON.stringify(shape('A'.repeat(Math.max(0, bytes - base))))
}

export function garbage(r: () => number): string {
  const kinds = [
    () => '{"id":1,"method":"query","params":{"path":"worker.hello"',
    () => Array.from({ length: 1 + Math.floor(r() * 200) }, () => String.fromCharCode(Math.floor(r() * 0xffff))).join(''),
    () => 'undefined',
    () => "{'single':'quotes'}",
    () => '{"a":1,}',
    () => 'NaN',
    () => '\u0000\u0000\u0000',
    () => '{"a":' + '1'.repeat(400) + 'e99999}',
  ]
  return kinds[Math.floor(r() * kinds.length)]()
}

/**
 * Splits each next unit of a load run into its steps, from the coordinator's step trace
 * (coordinator/src/trace/steps.ts) and the clients' (client.ts), both written when the run had
 * AUTORESEARCH_STEP_TRACE=<file>:
 *
 *   AUTORESEARCH_STEP_TRACE=/tmp/steps.log npx tsx bench/coordinator/run.ts --workers 10000 --seconds 30 --rate 33
 *   npx tsx bench/coordinator/steps.ts /tmp/steps.log
 *
 * Prints p50/p90/p99/max of each step over every next unit, then the slowest units step by step,
 * with the coordinator's disk syncs and tick batches and the clients' late event-loop turns that
 * overlapped them.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'

const file = process.argv[2]
if (!file) throw new Error('usage: steps.ts <trace file>')

/** The steps of one next unit, in order, as the coordinator names them; `client` is the report's send. */
const STEPS = ['report-in', 'stored', 'recorded', 'announced', 'lease-asked', 'leased', 'built', 'durable', 'sent'] as const
const SEGMENTS: [string, string, string][] = [
  ['client', 'report-in', 'report sent → received by the coordinator'],
  ['report-in', 'stored', 'code stored (git objects, diff)'],
  ['stored', 'recorded', 'report transaction'],
  ['recorded', 'announced', 'merges, follow-ups, events'],
  ['announced', 'lease-asked', 'feed wakes'],
  ['lease-asked', 'leased', 'lease (tick batch)'],
  ['leased', 'built', 'unit message built'],
  ['built', 'durable', 'lease on disk (group commit)'],
  ['durable', 'sent', 'unit sent'],
  ['sent', 'arrived', 'sent → the client has it'],
]

const byWorker = new Map<string, { t: number; name: string }[]>()
const syncs: { start: number; end: number }[] = []
const batches: { start: number; end: number; n: number }[] = []
let syncStart = 0
let batchStart = 0
for (const line of readFileSync(file, 'utf8').split('\n')) {
  if (!line) continue
  const [t, worker, name, extra] = line.split(' ')
  const at = Number(t)
  if (worker === '-') {
    if (name === 'sync-start') syncStart = at
    else if (name === 'sync-end') syncs.push({ start: syncStart, end: at })
    else if (name === 'batch-start') batchStart = at
    else if (name === 'batch-end') batches.push({ start: batchStart, end: at, n: Number(extra) })
    continue
  }
  let list = byWorker.get(worker)
  if (!list) byWorker.set(worker, (list = []))
  list.push({ t: at, name })
}

const units: { sent: number; worker: string; ms: number }[] = []
const lags: { at: number; ms: number; pid: string }[] = []
for (const f of readdirSync(dirname(file)).filter(f => f.startsWith(`${basename(file)}.client-`))) {
  const pid = f.split('-').pop()!
  for (const line of readFileSync(join(dirname(file), f), 'utf8').split('\n')) {
    const [kind, a, b, c] = line.split(' ')
    if (kind === 'unit') units.push({ sent: Number(a), worker: b, ms: Number(c) })
    if (kind === 'lag') lags.push({ at: Number(a), ms: Number(b), pid })
  }
}

interface Split { worker: string; sent: number; ms: number; at: Record<string, number> }
const splits: Split[] = []
for (const u of units) {
  const events = byWorker.get(u.worker) ?? []
  // The report's arrival: the first `report-in` of this worker after it sent (clocks of one machine;
  // 5 ms of slack for timeOrigin's rounding between processes).
  const i = events.findIndex(e => e.name === 'report-in' && e.t >= u.sent - 5 && e.t <= u.sent + u.ms)
  if (i < 0) continue
  const at: Record<string, number> = { client: u.sent, arrived: u.sent + u.ms }
  for (const e of events.slice(i)) {
    if (e.t > u.sent + u.ms + 5) break
    if ((STEPS as readonly string[]).includes(e.name) && !(e.name in at)) at[e.name] = e.t
  }
  splits.push({ worker: u.worker, sent: u.sent, ms: u.ms, at })
}

const pct = (v: number[], q: number) => {
  const s = [...v].sort((a, b) => a - b)
  return s.length ? s[Math.min(s.length - 1, Math.floor(q * s.length))] : NaN
}
const f1 = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : '–')
console.log(`${units.length} next units in the clients' trace, ${splits.length} matched to the coordinator's steps`)
console.log(`next unit: p50 ${f1(pct(units.map(u => u.ms), 0.5))}, p99 ${f1(pct(units.map(u => u.ms), 0.99))} ms\n`)
console.log('| step | p50 | p90 | p99 | max |\n|---|---:|---:|---:|---:|')
for (const [a, b, label] of SEGMENTS) {
  const v = splits.filter(s => a in s.at && b in s.at).map(s => s.at[b] - s.at[a])
  console.log(`| ${label} | ${f1(pct(v, 0.5))} | ${f1(pct(v, 0.9))} | ${f1(pct(v, 0.99))} | ${f1(Math.max(...v))} |`)
}
// Of the units ≥ 50 ms (the goal), how much was the coordinator's (report received → unit sent)
// and how much the two trips between client and coordinator (the clients' own delays included).
const late = splits.filter(s => s.ms >= 50 && 'report-in' in s.at && 'sent' in s.at)
const onServer = late.map(s => s.at.sent - s.at['report-in'])
const med = (v: number[]) => pct(v, 0.5)
console.log(`| **units ≥ 50 ms: ${late.length}**, median split: coordinator ${f1(med(onServer))} ms, client ↔ coordinator ${f1(med(late.map((s, i) => s.ms - onServer[i])))} ms | | | | |`)
// A unit slowed by the whole machine rather than by one step: while it waited, most client
// processes (their own event loops, at nice 10) were late by 20 ms or more too.
const processes = new Set(lags.map(l => l.pid)).size
const machineWide = late.filter(s => new Set(lags.filter(l => l.ms >= 20 && l.at - l.ms <= s.sent + s.ms && l.at >= s.sent).map(l => l.pid)).size >= Math.ceil(0.75 * processes))
console.log(`| units ≥ 50 ms while ≥ 3/4 of the ${processes} client processes were ≥ 20 ms late too: ${machineWide.length} | | | | |`)
const syncMs = syncs.map(s => s.end - s.start)
const batchMs = batches.map(b => b.end - b.start)
console.log(`| (disk syncs, ${syncs.length}) | ${f1(pct(syncMs, 0.5))} | ${f1(pct(syncMs, 0.9))} | ${f1(pct(syncMs, 0.99))} | ${f1(Math.max(...syncMs))} |`)
console.log(`| (tick batches, ${batches.length}) | ${f1(pct(batchMs, 0.5))} | ${f1(pct(batchMs, 0.9))} | ${f1(pct(batchMs, 0.99))} | ${f1(Math.max(...batchMs))} |`)

const slow = [...splits].sort((a, b) => b.ms - a.ms).slice(0, Math.max(10, Math.ceil(splits.length / 50)))
console.log(`\nthe slowest ${slow.length} (ms per step, in the order above; then the client lags ≥ 10 ms in the unit's time, by process)`)
const t0 = Math.min(...units.map(u => u.sent))
for (const s of slow) {
  const parts = SEGMENTS.map(([a, b]) => (a in s.at && b in s.at ? f1(s.at[b] - s.at[a]) : '?'))
  const during = lags.filter(l => l.at - l.ms <= s.sent + s.ms && l.at >= s.sent).map(l => `${l.pid}:${f1(l.ms)}`)
  console.log(`${f1((s.sent - t0) / 1000)} s ${s.worker} ${f1(s.ms)} ms = ${parts.join(' + ')}  lags ${during.join(' ') || '-'}`)
}

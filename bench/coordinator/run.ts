/**
 * Coordinator under load (docs/PERFORMANCE.md): N simulated workers against a real coordinator on
 * this machine, for each N, and one table.
 *   npx tsx bench/coordinator/run.ts [--workers 1000,5000,10000] [--seconds 60] [--rate 600]
 * --rate is the report rate the workers offer together (each trains N / rate seconds on average);
 * --cpu-prof DIR writes a V8 CPU profile of each coordinator run there.
 */
import { cpus } from 'node:os'
import { parseArgs } from 'node:util'
import { runLoad, type LoadResult } from './load.ts'

export const GOALS = { connected: 10_000, p99Ms: 50, reportsPerSecond: 500, rssMb: 1024 }

const { values } = parseArgs({
  options: {
    workers: { type: 'string', default: '1000,5000,10000' },
    seconds: { type: 'string', default: '60' },
    rate: { type: 'string', default: '600' },
    'cpu-prof': { type: 'string' },
    quiet: { type: 'boolean', default: false },
    'connect-timeout': { type: 'string', default: '180' },
  },
})
const sizes = values.workers!.split(',').map(Number)
const seconds = Number(values.seconds)
const rate = Number(values.rate)
if (!sizes.every(n => Number.isInteger(n) && n > 0) || !(seconds > 0) || !(rate > 0)) {
  console.error('usage: npx tsx bench/coordinator/run.ts [--workers 1000,5000,10000] [--seconds 60] [--rate 600]')
  process.exit(2)
}

const fmt = (x: number, digits = 0) => (Number.isFinite(x) ? x.toFixed(digits) : '-')
const log = (line: string) => { if (!values.quiet) console.error(`  ${line}`) }

const results: LoadResult[] = []
for (const workers of sizes) {
  console.error(`# ${workers} workers, ${seconds} s window, ${rate} reports/s offered`)
  const r = await runLoad({ workers, seconds, rate, log, connectTimeoutSeconds: Number(values['connect-timeout']), nodeArgs: values['cpu-prof'] ? ['--cpu-prof', `--cpu-prof-dir=${values['cpu-prof']}`] : [] })
  results.push(r)
  log(`experiments ${JSON.stringify(r.experiments)}, merges ${r.merges}, heartbeats ${fmt(r.heartbeatsPerSecond)}/s, clients used ${fmt(r.clientCpuPercent)} % CPU, ` +
    `load average before the run ${fmt(r.loadBefore, 1)}`)
  for (const [e, n] of Object.entries(r.errors)) log(`error ×${n}: ${e}`)
}

const rows = results.map(r => `| ${r.workers.toLocaleString('en')} | ${r.connected.toLocaleString('en')} | ${r.connectSeconds === null ? 'not all' : `${fmt(r.connectSeconds, 1)} s`} | ` +
  `${fmt(r.firstUnit.p50)} / ${fmt(r.firstUnit.p99)} ms | ${fmt(r.nextUnit.p50, 1)} / ${fmt(r.nextUnit.p99, 1)} ms (n=${r.nextUnit.n}) | ` +
  `${fmt(r.reportsPerSecond)} of ${fmt(r.offeredPerSecond)} | ${fmt(r.peakRssMb)} MB | ${fmt(r.cpuPercent)} % + git ${fmt(r.gitCpuPercent)} % |`)
console.log([
  `Node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}; ${seconds} s measured per row after every worker said hello; ${rate} reports/s offered.`,
  '',
  '| workers | connected | connect (all hellos) | first unit p50 / p99 | next unit p50 / p99 | reports/s (of offered) | coordinator peak RSS | coordinator CPU (of one core) |',
  '|---:|---:|---:|---:|---:|---:|---:|---:|',
  ...rows,
].join('\n'))

const big = results.filter(r => r.workers >= GOALS.connected)
for (const r of big) {
  const met = [
    [`${GOALS.connected} connected`, r.connected >= GOALS.connected],
    [`p99 next unit < ${GOALS.p99Ms} ms`, r.nextUnit.p99 < GOALS.p99Ms],
    [`≥ ${GOALS.reportsPerSecond} reports/s`, r.reportsPerSecond >= GOALS.reportsPerSecond],
    [`RSS < ${GOALS.rssMb} MB`, r.peakRssMb < GOALS.rssMb],
  ] as const
  console.log(`\ngoals at ${r.workers} workers: ${met.map(([g, ok]) => `${ok ? 'met' : 'MISSED'}: ${g}`).join('; ')}`)
}

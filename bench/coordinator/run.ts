/**
 * Coordinator under load (docs/PERFORMANCE.md): N simulated workers against a real coordinator on
 * this machine, for each N, and one table.
 *   npx tsx bench/coordinator/run.ts [--workers 1000,5000,10000] [--seconds 60] [--rate 600] [--write-docs]
 * --client-ping-ms N: the clients ping after N ms without a message (default: as the real worker does);
 * --no-candidate-calls: the clients skip the claim and the `known` query a real worker makes before a candidate's run.
 * --rate is the report rate the workers offer together (each trains N / rate seconds on average);
 * --cpu-prof DIR writes a V8 CPU profile of each coordinator run there; --node-arg X (repeatable) starts the coordinator's node with X; --write-docs puts the
 * command, the machine, the table and the goals into docs/PERFORMANCE.md (between its markers).
 */
import { execFileSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { cpus, totalmem } from 'node:os'
import { parseArgs } from 'node:util'
import { fileURLToPath } from 'node:url'
import { runLoad, type LoadResult } from './load.ts'
import { openFilesHardLimit } from './proc.ts'

export const GOALS = { connected: 10_000, p99Ms: 50, reportsPerSecond: 500, rssMb: 1024 }

const { values } = parseArgs({
  options: {
    workers: { type: 'string', default: '1000,5000,10000' },
    seconds: { type: 'string', default: '60' },
    rate: { type: 'string', default: '600' },
    'cpu-prof': { type: 'string' },
    'node-arg': { type: 'string', multiple: true, default: [] },
    quiet: { type: 'boolean', default: false },
    'connect-timeout': { type: 'string', default: '180' },
    'client-ping-ms': { type: 'string' },
    'no-candidate-calls': { type: 'boolean', default: false },
    'write-docs': { type: 'boolean', default: false },
  },
})
const uptime = () => execFileSync('uptime').toString().trim()
const uptimeBefore = uptime()
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
  const r = await runLoad({ workers, seconds, rate, log, connectTimeoutSeconds: Number(values['connect-timeout']), pingMs: values['client-ping-ms'] ? Number(values['client-ping-ms']) : undefined, candidateCalls: !values['no-candidate-calls'], nodeArgs: [...values['node-arg']!, ...(values['cpu-prof'] ? ['--cpu-prof', `--cpu-prof-dir=${values['cpu-prof']}`] : [])] })
  results.push(r)
  log(`experiments ${JSON.stringify(r.experiments)}, merges ${r.merges}, queued units at most ${r.queuedMax}, heartbeats ${fmt(r.heartbeatsPerSecond)}/s, coordinator CPU before the first report ${fmt(r.quietCpuPercent)} %, clients used ${fmt(r.clientCpuPercent)} % CPU, ` +
    `load average before the run ${fmt(r.loadBefore, 1)}`)
  for (const [e, n] of Object.entries(r.errors)) log(`error ×${n}: ${e}`)
}

const rows = results.map(r => `| ${r.workers.toLocaleString('en')} | ${r.connected.toLocaleString('en')} | ${r.connectSeconds === null ? 'not all' : `${fmt(r.connectSeconds, 1)} s`} / ${fmt(r.connect.p99)} ms | ` +
  `${fmt(r.firstUnit.p50)} / ${fmt(r.firstUnit.p99)} ms | ${fmt(r.nextUnit.p50, 1)} / ${fmt(r.nextUnit.p99, 1)} ms (n=${r.nextUnit.n}) | ` +
  `${fmt(r.reportsPerSecond)} of ${fmt(r.offeredPerSecond)} | ${fmt(r.peakRssMb)} MB | ${fmt(r.cpuPercent)} % + git ${fmt(r.gitCpuPercent)} % | ` +
  `${fmt((10 * r.cpuPercent) / r.reportsPerSecond, 1)} ms + git ${fmt((10 * r.gitCpuPercent) / r.reportsPerSecond, 1)} ms | ${fmt(r.loadBefore, 1)} |`)
const uptimeAfter = uptime()
const table = [
  `Node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}; ${seconds} s measured per row, once every worker has connected and the first training runs have ended; ${rate} reports/s offered.`,
  '',
  '| workers | connected | connect: all / p99 per worker | first unit p50 / p99 | next unit p50 / p99 | reports/s (of offered) | coordinator peak RSS | coordinator CPU (of one core) | coordinator CPU per report (+ its git processes) | load average before |',
  '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ...rows,
].join('\n')
console.log(table)

const goals = results.filter(r => r.workers >= GOALS.connected).map(r => {
  const met = [
    [`${GOALS.connected.toLocaleString('en')} connected`, r.connected >= GOALS.connected],
    [`p99 next unit < ${GOALS.p99Ms} ms`, r.nextUnit.p99 < GOALS.p99Ms],
    [`≥ ${GOALS.reportsPerSecond} reports/s`, r.reportsPerSecond >= GOALS.reportsPerSecond],
    [`RSS < ${GOALS.rssMb} MB`, r.peakRssMb < GOALS.rssMb],
  ] as const
  return `goals at ${r.workers.toLocaleString('en')} workers: ${met.map(([g, ok]) => `${ok ? 'met' : '**missed**'}: ${g}`).join('; ')}`
})
for (const g of goals) console.log(`\n${g}`)

if (values['write-docs']) {
  const file = fileURLToPath(new URL('../../docs/PERFORMANCE.md', import.meta.url))
  const begin = '<!-- bench/coordinator/run.ts --write-docs: from here -->'
  const end = '<!-- bench/coordinator/run.ts --write-docs: to here -->'
  const generated = [
    begin,
    '```sh',
    `ulimit -n ${openFilesHardLimit()}  # the benchmark raises the coordinator's open-files limit to this itself`,
    `npx tsx bench/coordinator/run.ts ${process.argv.slice(2).join(' ')}`,
    '```',
    '',
    `Machine: ${cpus().length} cores (${cpus()[0]?.model ?? 'cpu'}), ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, shared with other jobs.`,
    `\`uptime\` before: \`${uptimeBefore}\`; after: \`${uptimeAfter}\`.`,
    '',
    table,
    '',
    ...goals.map(g => `${g}.`),
    end,
  ].join('\n')
  const doc = readFileSync(file, 'utf8')
  const at = doc.indexOf(begin)
  const to = doc.indexOf(end)
  const next = at >= 0 && to > at
    ? doc.slice(0, at) + generated + doc.slice(to + end.length)
    : `${doc.trimEnd()}\n\n## Coordinator under load\n\n${generated}\n`
  writeFileSync(file, next)
  console.error(`wrote the table into ${file}`)
}

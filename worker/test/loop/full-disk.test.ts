import t from 'tap'
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { execa } from 'execa'
import type { WorkUnit } from '@autoresearch-grid/shared'
import { CPU, report, startCoordinator, wsClient } from '../../../coordinator/test/helpers.ts'
import { experiments } from '../../../coordinator/src/db/schema.ts'

// Issue 8: a full disk under the spool. The disk is made full for real: a tmpfs of 8 KiB where
// mounting is allowed (root), else the file-size limit (RLIMIT_FSIZE through prlimit), which
// refuses writes the same way (EFBIG instead of ENOSPC). The output says which one ran.
const fixture = fileURLToPath(new URL('../fixtures/full-disk-worker.ts', import.meta.url))
const LIMIT = 8 * 1024

async function fullDisk(dir: string): Promise<{ how: string; prefix: string[]; spool: string; undo: () => Promise<unknown> }> {
  await mkdir(dir, { recursive: true })
  // ARG_FULL_DISK=fsize tries the fallback on a machine that could mount.
  const m = process.env.ARG_FULL_DISK === 'fsize' ? { exitCode: 1, stderr: 'ARG_FULL_DISK=fsize', shortMessage: '' } : await execa('mount', ['-t', 'tmpfs', '-o', `size=${LIMIT}`, 'tmpfs', dir], { reject: false })
  if (m.exitCode === 0) return { how: `a tmpfs of ${LIMIT / 1024} KiB mounted at ${dir}`, prefix: [], spool: join(dir, 'spool'), undo: () => execa('umount', [dir], { reject: false }) }
  const why = String(m.stderr || m.shortMessage).trim().split('\n').pop()
  return { how: `RLIMIT_FSIZE of ${LIMIT / 1024} KiB (prlimit): mounting a tmpfs is not allowed here (${why})`, prefix: ['prlimit', `--fsize=${LIMIT}`, '--'], spool: join(dir, 'spool'), undo: async () => {} }
}

t.test('a result the full disk refuses is kept in memory and delivered; the spool stays whole', async t => {
  const c = await startCoordinator()
  t.teardown(c.close)
  await c.campaign('demo')
  const token = c.workerToken()
  const client = wsClient(c.url, token)
  t.teardown(client.close)
  const unitOf = async (name: string) => {
    const { workerId } = await client.api.worker.hello.mutate({ name, hardware: CPU, fingerprints: {}, version: 't' })
    const unit = await new Promise<WorkUnit>(resolve => {
      const sub = client.api.worker.assignments.subscribe({ workerId }, { onData: e => { if (e.type === 'unit') { sub.unsubscribe(); resolve(e.unit) } } })
    })
    return { workerId, unit }
  }
  const a = await unitOf('w1')
  const b = await unitOf('w2')
  // The second result is far larger than the disk: its write fails part-way.
  const big = `${'# a long comment line to make the source large\n'.repeat(600)}MATRIX_LR = 0.03\n`
  const items = [{ workerId: a.workerId, report: report(a.unit, 1.5) }, { workerId: b.workerId, report: report(b.unit, 1.4, big) }]

  const dir = await mkdtemp(join(tmpdir(), 'arg-full-disk-'))
  const disk = await fullDisk(join(dir, 'disk'))
  t.teardown(async () => { await disk.undo(); await rm(dir, { recursive: true, force: true }) })
  t.comment(`full disk: ${disk.how}`)

  const run = await execa(disk.prefix[0] ?? process.execPath, [...disk.prefix.slice(1), ...(disk.prefix.length ? [process.execPath] : []), '--import', 'tsx', fixture], {
    env: { ARG_URL: c.url, ARG_TOKEN: token, ARG_SPOOL: disk.spool, ARG_ITEMS: JSON.stringify(items), TSX_DISABLE_CACHE: '1', NODE_OPTIONS: '' }, reject: false, all: true,
  })
  if (!t.equal(run.exitCode, 0, 'the worker process ran to the end')) t.comment(`${run.shortMessage}\n${run.all}`)
  const seen = JSON.parse(String(run.stdout).trim().split('\n').pop()!)
  t.same(seen.first, { durable: true }, 'the small result fits')
  t.equal(seen.second.durable, false, 'the large one does not')
  t.match(seen.second.problem, /disk holding .* is full: free some space there \(ENOSPC: no space left|larger than this process may write \(ulimit -f\): raise that limit \(EFBIG: file too large/, 'the problem says what to do')
  t.same(seen.afterFailure, [`${a.unit.id}.json`], 'no half-written file is left in the spool')
  t.same(seen.restartReads, [a.unit.id], 'a restart would read the earlier result, whole')
  t.ok(seen.lines.some((l: string) => l.startsWith(`${b.unit.id}: could not save the result in ${disk.spool}: `) && /kept in memory and sent when the coordinator answers/.test(l)), seen.lines.join('\n'))
  t.same(seen.left, [], 'both results left the spool once delivered')
  t.equal(seen.unsaved, 0, 'and memory')

  const rows = c.app.db.select().from(experiments).all()
  t.same(rows.map(r => r.unitId).sort(), [a.unit.id, b.unit.id].sort(), 'the coordinator recorded both, once each')
  t.match(rows.find(r => r.unitId === b.unit.id)!.description, /./, 'the large one whole')
})

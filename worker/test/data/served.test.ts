import t, { type Test } from 'tap'
import { execa } from 'execa'
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { startCoordinator } from '../../../coordinator/test/helpers.ts'
import { createCampaign } from '../../../coordinator/src/campaigns/campaigns.ts'
import { DATASET_FILES } from '../../../coordinator/src/dataset/manifest.ts'
import { ServedDownloads } from '../../src/data/served.ts'
import { DataProxy } from '../fixtures/data-proxy.ts'

// Downloading the data set a real coordinator serves, through a proxy that records and spoils the
// transfers: resumed after a cut, fetched again when corrupt, once per machine, and a full disk
// said in words.
const fixture = fileURLToPath(new URL('../fixtures/served-download.ts', import.meta.url))
/** This test process's served data sets, as a worker process has one. */
const served = new ServedDownloads()

async function setup(t: Test, faults: ConstructorParameters<typeof DataProxy>[1] = {}) {
  const c = await startCoordinator()
  t.teardown(c.close)
  const prepared = join(c.dir, 'prepared')
  await mkdir(prepared)
  const bytes = new Map<string, Buffer>()
  for (const [i, name] of DATASET_FILES.entries()) {
    const b = Buffer.alloc(name === 'train.bin' ? 3 << 20 : 5000 + i, i + 1)
    for (let j = 0; j < b.length; j += 4096) b[j] = (j / 4096) % 256
    bytes.set(name, b)
    await writeFile(join(prepared, name), b)
  }
  await createCampaign(c.app, { name: 'mail', seed: { 'train.py': 'X = 1\n' }, spec: { budgetSeconds: 10, profile: 'cpu-tiny', data: { kind: 'served', label: 'emails' } }, served: { source: 'dir:/x', dir: prepared } })
  const proxy = new DataProxy(c.url, faults)
  const url = await proxy.listen()
  t.teardown(() => proxy.close())
  const root = t.testdir({})
  return { url, proxy, root, token: c.workerToken(), bytes }
}

async function same(t: Test, dir: string, bytes: Map<string, Buffer>) {
  t.same((await readdir(dir)).sort(), [...DATASET_FILES].sort(), "prepare.py's layout, nothing else")
  for (const [name, b] of bytes) t.ok((await readFile(join(dir, name))).equals(b), `${name} arrived intact`)
}

t.test('a cut transfer resumes from where it stopped with a Range request', async t => {
  const s = await setup(t, { cut: new Map([['train.bin', 1 << 20]]) })
  const lines: string[] = []
  const r = await served.ensure({ root: s.root, httpBase: s.url, dataPath: '/data/mail', token: s.token, retryBaseMs: 10, log: l => lines.push(l) })
  t.ok(r.downloaded)
  await same(t, r.dir, s.bytes)
  const [first, second] = s.proxy.fetched('train.bin')
  t.equal(first, null, 'the first request asks for the whole file')
  t.match(second, /^bytes=\d+-$/, `the second only for the rest (${second})`)
  t.ok(Number(/\d+/.exec(second!)![0]) >= 1 << 19, 'from well past the start')
  t.match(lines.join('\n'), /train\.bin interrupted at \d+ of 3145728 bytes/)
  const again = await served.ensure({ root: s.root, httpBase: s.url, dataPath: '/data/mail', token: s.token })
  t.same([again.dir, again.downloaded, s.proxy.fetched('train.bin').length], [r.dir, false, 2], 'a second call finds it and downloads nothing')
})

t.test('a file that arrives corrupt is fetched again; one corrupt every time is an error that says so', async t => {
  const s = await setup(t, { corrupt: new Map([['val.bin', 1]]) })
  const r = await served.ensure({ root: s.root, httpBase: s.url, dataPath: '/data/mail', token: s.token, retryBaseMs: 10 })
  await same(t, r.dir, s.bytes)
  t.equal(s.proxy.fetched('val.bin').length, 2, 'val.bin twice')
  const bad = await setup(t, { corrupt: new Map([['val.bin', 9]]) })
  await t.rejects(served.ensure({ root: bad.root, httpBase: bad.url, dataPath: '/data/mail', token: bad.token, retryBaseMs: 10 }), /val\.bin arrived corrupt twice .*ask its maintainer/)
  t.notOk((await readdir(bad.root)).some(f => /^[0-9a-f]{64}$/.test(f)), 'no data set folder appears')
  await t.rejects(served.ensure({ root: bad.root, httpBase: bad.url, dataPath: '/data/mail', token: 'arg_wrk_wrong' }), /HTTP 401 .*worker token is required/, 'a wrong token is told')
})

t.test('two processes of one machine download it once, into one shared folder', async t => {
  const s = await setup(t)
  const env = { ARG_URL: s.url, ARG_TOKEN: s.token, ARG_ROOT: s.root, TSX_DISABLE_CACHE: '1', NODE_OPTIONS: '' }
  const runs = await Promise.all([1, 2].map(() => execa(process.execPath, ['--import', 'tsx', fixture], { env, reject: false, all: true })))
  const outs = runs.map(r => JSON.parse(String(r.stdout).trim().split('\n').pop()!))
  t.same(outs.map(o => o.dir), [outs[0].dir, outs[0].dir], `both use ${outs[0].dir}`)
  t.same(outs.map(o => o.downloaded).sort(), [false, true], 'one downloaded, the other waited for it')
  for (const f of DATASET_FILES) t.equal(s.proxy.fetched(f).length, 1, `${f} crossed the network once`)
  await same(t, outs[0].dir, s.bytes)
  const inOne = await Promise.all([1, 2].map(() => served.ensure({ root: t.testdir({}), httpBase: s.url, dataPath: '/data/mail', token: s.token })))
  t.equal(inOne[0].dir.split('/').pop(), inOne[1].dir.split('/').pop())
})

t.test('a full disk stops the download at once with what to do', async t => {
  const s = await setup(t)
  // The disk is full for real: a file-size limit refuses the write (EFBIG; a small tmpfs needs root).
  const run = await execa('prlimit', ['--fsize=100000', '--', process.execPath, '--import', 'tsx', fixture],
    { env: { ARG_URL: s.url, ARG_TOKEN: s.token, ARG_ROOT: s.root, TSX_DISABLE_CACHE: '1', NODE_OPTIONS: '' }, reject: false, all: true })
  const out = JSON.parse(String(run.stdout).trim().split('\n').pop()!)
  t.match(out.error, /larger than this process may write \(ulimit -f; the data set needs 3\.2 MB\): raise that limit|disk holding .* is full/, out.error)
  t.equal(s.proxy.fetched('train.bin').length, 1, 'not retried')
})

t.test('a disk too small for the data set is said before the first byte is fetched', async t => {
  const s = await setup(t)
  // A real small disk: a 64 KiB tmpfs, where this machine lets us mount one (root).
  const disk = join(s.root, 'small-disk')
  await mkdir(disk)
  const m = await execa('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', disk], { reject: false })
  if (m.exitCode !== 0) {
    t.comment(`skipped: cannot mount a tmpfs here (${String(m.stderr).trim()}); the file-size limit test above covers a full disk`)
    return
  }
  t.teardown(() => execa('umount', [disk], { reject: false }))
  await t.rejects(served.ensure({ root: join(disk, '_served'), httpBase: s.url, dataPath: '/data/mail', token: s.token }),
    /the disk holding .*small-disk\/_served is full \(the data set needs 3\.2 MB\): free space there or start the worker with --state on a larger disk/)
  t.equal(s.proxy.requests.length, 0, 'no file was requested')
})

import t from 'tap'
import { createHash } from 'node:crypto'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { datasetId, DatasetManifest, parseRange } from '@autoresearch-grid/shared'
import { startCoordinator } from '../helpers.ts'
import { createCampaign } from '../../src/campaigns/campaigns.ts'
import { DATASET_FILES } from '../../src/dataset/manifest.ts'

// The coordinator serves a prepared data set that only it has: to worker tokens, resumable, hashed.
const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex')

async function servedCampaign(c: Awaited<ReturnType<typeof startCoordinator>>) {
  const dir = join(c.dir, 'prepared')
  await mkdir(dir)
  const bytes = new Map<string, Buffer>()
  for (const [i, name] of DATASET_FILES.entries()) {
    const b = Buffer.from(Array.from({ length: 1000 + i * 333 }, (_, j) => (j * (i + 3)) % 256))
    bytes.set(name, b)
    await writeFile(join(dir, name), b)
  }
  await createCampaign(c.app, { name: 'mail', seed: { 'train.py': 'X = 1\n' }, spec: { budgetSeconds: 10, profile: 'cpu-tiny', data: { kind: 'served', label: 'emails' } },
    served: { source: 'dir:/data/emails', dir } })
  return bytes
}

t.test('the manifest names every file of the data set with its size, hash and reader; only worker tokens get it', async t => {
  const c = await startCoordinator()
  t.teardown(c.close)
  const bytes = await servedCampaign(c)
  t.equal((await fetch(`${c.url}/data/mail`)).status, 401, 'no token: refused')
  t.equal((await fetch(`${c.url}/data/mail`, { headers: { authorization: 'Bearer arg_wrk_forged' } })).status, 401, 'a forged token: refused')
  const token = c.workerToken()
  const res = await fetch(`${c.url}/data/mail`, { headers: { authorization: `Bearer ${token}` } })
  const manifest = DatasetManifest.parse(await res.json())
  t.same(manifest.files.map(f => [f.name, f.size, f.sha256]), DATASET_FILES.map(n => [n, bytes.get(n)!.length, sha(bytes.get(n)!)]))
  t.same(Object.fromEntries(manifest.files.map(f => [f.name, f.role])), {
    'meta.json': 'shared', 'tokenizer.model': 'shared', 'token_bytes.npy': 'shared', 'train.bin': 'train', 'train_docs.npy': 'train', 'val.bin': 'eval', 'val_docs.npy': 'eval',
  }, 'the validation split is marked for the evaluator only')
  t.equal(manifest.id, datasetId(manifest.files, sha), 'content-addressed')
  const hello = await fetch(`${c.url}/trpc/worker.hello`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'w', hardware: { gpus: [], cpu: { model: 'c', cores: 2, arch: 'x86_64' }, platform: 'linux', torch: '1.13.1', hardwareClass: 'cpu-x86_64' }, version: 't' }) })
  const reply = (await hello.json()).result.data
  t.match(reply.campaigns[0], { name: 'mail', dataPath: '/data/mail', spec: { data: { kind: 'served', label: 'emails' } } }, 'hello tells workers where the data is')
  t.match(reply.campaigns[0].refused, /not prepared for campaign "mail" \(data: served by the coordinator \(emails\)\)/, 'and refuses them until they have it')
  t.notMatch(JSON.stringify(reply), /\/data\/emails/, "the maintainer's path is not sent")
})

t.test('files come whole or from a byte offset (HTTP Range), and a bad range or name is refused', async t => {
  const c = await startCoordinator()
  t.teardown(c.close)
  const bytes = await servedCampaign(c)
  const auth = { authorization: `Bearer ${c.workerToken()}` }
  const whole = await fetch(`${c.url}/data/mail/files/train.bin`, { headers: auth })
  t.equal(whole.status, 200)
  t.same(Buffer.from(await whole.arrayBuffer()), bytes.get('train.bin'))
  const rest = await fetch(`${c.url}/data/mail/files/train.bin`, { headers: { ...auth, range: 'bytes=1000-' } })
  t.equal(rest.status, 206)
  t.equal(rest.headers.get('content-range'), `bytes 1000-${bytes.get('train.bin')!.length - 1}/${bytes.get('train.bin')!.length}`)
  t.same(Buffer.from(await rest.arrayBuffer()), bytes.get('train.bin')!.subarray(1000))
  t.equal((await fetch(`${c.url}/data/mail/files/train.bin`, { headers: { ...auth, range: 'bytes=999999-' } })).status, 416)
  t.equal((await fetch(`${c.url}/data/mail/files/..%2Fcoordinator.db`, { headers: auth })).status, 404, 'only the manifest\'s files')
  t.equal((await fetch(`${c.url}/data/demo`, { headers: auth })).status, 404, 'a campaign that serves nothing')
})

t.test('parseRange reads the one-range forms and nothing else', async t => {
  t.same(parseRange('bytes=10-', 100), { start: 10, end: 99 })
  t.same(parseRange('bytes=10-19', 100), { start: 10, end: 19 })
  t.same(parseRange('bytes=-5', 100), { start: 95, end: 99 })
  t.same(parseRange('bytes=90-500', 100), { start: 90, end: 99 })
  t.equal(parseRange('bytes=100-', 100), 'unsatisfiable')
  t.equal(parseRange(undefined, 100), null)
  t.equal(parseRange('bytes=0-1,5-6', 100), null, 'several ranges: the whole file')
  t.equal(parseRange('items=1-2', 100), null)
})

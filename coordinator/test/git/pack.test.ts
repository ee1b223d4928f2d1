import t from 'tap'
import { execFileSync } from 'node:child_process'
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { GitStore } from '../../src/git/store.ts'
import { objectBytes, objectId, treeBody, type ObjectFormat, type ObjectType } from '../../src/git/objects.ts'
import { buildPack, PackedObjects, tableCrc32, type PackEntry } from '../../src/git/pack.ts'
import * as zlib from 'node:zlib'
import { randomBytes } from 'node:crypto'

// The store writes its objects as packs (git/pack.ts), not through git: these tests hold the packs
// and their indexes against git's own index-pack, verify-pack, cat-file and fsck --strict.

async function repo(t: { teardown(fn: () => unknown): void }, format: ObjectFormat = 'sha1') {
  const dir = await mkdtemp(join(tmpdir(), 'arg-pack-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const git = (args: string[], input?: string) => execFileSync('git', args, { cwd: dir, input, encoding: 'utf8', stdio: 'pipe', maxBuffer: 64 << 20, env: { PATH: process.env.PATH!, HOME: dir, GIT_CONFIG_NOSYSTEM: '1' } })
  git(['init', '--quiet', '--bare', `--object-format=${format}`, '.'])
  return { dir, git }
}

function entry(format: ObjectFormat, type: ObjectType, body: Buffer): PackEntry {
  return { id: objectId(format, objectBytes(type, body)), type, body }
}

/** Objects of every size class of the entry header: empty, 1-byte, 2-byte and 3-byte sizes. */
function sampleEntries(format: ObjectFormat): PackEntry[] {
  const big = Buffer.from(Array.from({ length: 40_000 }, (_, i) => `line ${i} ${(i * 7919) % 1000}\n`).join(''))
  const blobs = [Buffer.alloc(0), Buffer.from('x = 1\n'), Buffer.from('a'.repeat(200)), big].map(b => entry(format, 'blob', b))
  const tree = entry(format, 'tree', treeBody(blobs.map((b, i) => ({ name: `f${i}.py`, id: b.id }))))
  const commit = entry(format, 'commit', Buffer.from(`tree ${tree.id}\nauthor a <a@x> 1700000000 +0000\ncommitter a <a@x> 1700000000 +0000\n\nm\n`))
  return [...blobs, tree, commit]
}

for (const format of ['sha1', 'sha256'] as const) {
  t.test(`${format}: a pack and its index are what git's index-pack makes of that pack, and git reads every object`, async t => {
    const { dir, git } = await repo(t, format)
    const entries = sampleEntries(format)
    const { name, pack, idx } = buildPack(format, entries)
    const packPath = join(dir, 'objects', 'pack', `pack-${name}.pack`)
    writeFileSync(packPath, pack)
    // index-pack reads the pack (checking its trailer) and writes the index git would: ours must be byte for byte the same.
    git(['index-pack', '-o', join(dir, 'theirs.idx'), packPath])
    t.ok(readFileSync(join(dir, 'theirs.idx')).equals(idx), 'the index is byte for byte index-pack\'s')
    writeFileSync(join(dir, 'objects', 'pack', `pack-${name}.idx`), idx)
    const listed = git(['verify-pack', '-v', packPath.replace(/\.pack$/, '.idx')])
    for (const e of entries) {
      t.match(listed, new RegExp(`^${e.id} ${e.type} +${e.body.length} `, 'm'), `verify-pack lists ${e.type} ${e.body.length}`)
      t.equal(git(['cat-file', e.type, e.id]), e.body.toString(), `cat-file reads the ${e.type} of ${e.body.length} bytes`)
    }
    git(['fsck', '--strict'])
    t.pass('fsck --strict is content')
  })
}

t.test('verify-pack catches a wrong CRC, a wrong offset or a wrong pack checksum (what a broken writer would leave)', async t => {
  const { dir, git } = await repo(t)
  const entries = sampleEntries('sha1')
  const { name, pack, idx } = buildPack('sha1', entries)
  const n = entries.length
  // Version-2 layout: magic, version, fan-out, ids, CRCs, offsets, pack checksum, index checksum.
  const crcAt = 8 + 256 * 4 + n * 20
  const offsetAt = crcAt + n * 4
  const reseal = (b: Buffer) => { const body = b.subarray(0, b.length - 20); return Buffer.concat([body, Buffer.from(objectId('sha1', body), 'hex')]) }
  const broken: [string, Buffer, Buffer][] = [
    ['a CRC', pack, (() => { const b = Buffer.from(idx); b[crcAt + 3] ^= 1; return reseal(b) })()],
    ['an offset', pack, (() => { const b = Buffer.from(idx); b.writeUInt32BE(b.readUInt32BE(offsetAt + 4) + 1, offsetAt + 4); return reseal(b) })()],
    ['a byte of an object', (() => { const b = Buffer.from(pack); b[40] ^= 0xff; return b })(), idx],
  ]
  for (const [what, p, i] of broken) {
    writeFileSync(join(dir, 'objects', 'pack', `pack-${name}.pack`), p)
    writeFileSync(join(dir, 'objects', 'pack', `pack-${name}.idx`), i)
    t.throws(() => git(['verify-pack', join(dir, 'objects', 'pack', `pack-${name}.idx`)]), `verify-pack refuses ${what}`)
  }
})

t.test('objects asked for within the window share one pack; one asked for twice is written once', async t => {
  const { dir, git } = await repo(t)
  const o = new PackedObjects(dir, 'sha1', { windowMs: 20 })
  const first = Array.from({ length: 10 }, (_, i) => o.add('blob', Buffer.from(`blob ${i}\n`)))
  const again = o.add('blob', Buffer.from('blob 3\n'))
  t.equal(again.id, first[3].id)
  t.notOk(o.has(first[0].id), 'not in place before its pack is')
  await Promise.all([...first, again].map(x => x.written))
  t.ok(o.has(first[0].id), 'in place once its pack is')
  t.equal(o.packsWritten, 1, 'one pack')
  const later = o.add('blob', Buffer.from('blob 5\n'))
  await later.written
  t.equal(o.packsWritten, 1, 'an object already written is not written again')
  const idx = readdirSync(join(dir, 'objects', 'pack')).filter(f => f.endsWith('.idx'))
  t.equal(idx.length, 1)
  t.equal(git(['verify-pack', '-v', join(dir, 'objects', 'pack', idx[0])]).split('\n').filter(l => / blob /.test(l)).length, 10, 'ten objects, none twice')
  t.equal(git(['cat-file', 'blob', first[7].id]), 'blob 7\n')
})

t.test('many commits in overlapping batches: each in place when commit resolves, readers right throughout, repacked, fsck content', async t => {
  const { dir, git } = await repo(t)
  const s = await GitStore.open(dir, { objects: 'packs' })
  t.teardown(async () => { await s.idle(); s.close() })
  const text = (i: number) => `DEPTH = ${i}\n${'# padding of a train.py\n'.repeat(50)}LR = ${i / 1000}\n`
  const seed = await s.commit({ files: { 'train.py': text(0) }, parents: [], message: 'seed', author: { name: 'a', email: 'a@x' } })
  const made: { commit: string; i: number; parent: string }[] = []
  let readsDuringRepack = 0
  let reads = 0
  let writing = true
  // A reader that asks cat-file and diff-tree about commits already made, all along (repacks included).
  const reader = (async () => {
    let k = 0
    while (writing || k < 50) {
      const m = made.length ? made[(k++ * 7919) % made.length] : null
      if (m) {
        const during = s.packStats().repacking
        const read = await s.readFile(m.commit, 'train.py')
        if (read !== text(m.i)) t.fail(`train.py of ${m.commit} (${m.i}): ${read.slice(0, 200)}`)
        const diff = await s.changes(m.commit)
        if (!diff.includes(`+DEPTH = ${m.i}\n`)) t.fail(`diff of ${m.commit} (${m.i}): ${diff.slice(0, 200)}`)
        reads++
        if (during) readsDuringRepack++
      }
      await new Promise(resolve => setImmediate(resolve))
    }
  })()
  // Batches of 1-9 commits, one every 3 ms (the store's window is 2 ms); each batch starts before
  // the one before it has resolved.
  let i = 1
  let previous: Promise<unknown> = Promise.resolve()
  for (let batch = 0; batch < 160; batch++) {
    const size = 1 + (batch * 5) % 9
    const these = Array.from({ length: size }, () => {
      const n = i++
      return s.commit({ files: { 'train.py': text(n), 'extra.py': `x = ${n % 3}\n` }, parents: [seed], message: `try ${n}`, author: { name: 'a', email: 'a@x' } })
        .then(commit => {
          // In place when it resolves: git (a process started now) reads it.
          if (n % 40 === 0) t.equal(git(['cat-file', '-p', `${commit}:train.py`]), text(n), `commit ${n} readable at once`)
          made.push({ commit, i: n, parent: seed })
        })
    })
    const all = Promise.all(these)
    await previous
    previous = all
    await new Promise(resolve => setTimeout(resolve, 3))
  }
  await previous
  // Readers keep going until the repacks started by these packs have ended.
  await s.idle()
  writing = false
  await reader
  t.equal(made.length, i - 1, 'every commit resolved')
  t.ok(reads > 100, `cat-file and diff-tree answered right all along (${reads} reads)`)
  const stats = s.packStats()
  t.ok(stats.repacks >= 2, `repacks ran (${stats.repacks}, after ${stats.packsWritten} packs)`)
  t.ok(readsDuringRepack > 0, `reads answered while a repack ran (${readsDuringRepack} of ${reads})`)
  const packs = readdirSync(join(dir, 'objects', 'pack')).filter(f => f.endsWith('.idx'))
  t.ok(packs.length < stats.packsWritten / 4, `${packs.length} packs left of ${stats.packsWritten} written`)
  t.same(readdirSync(join(dir, 'objects', 'pack')).filter(f => f.startsWith('tmp_')), [], 'no temporary file left')
  t.same(readdirSync(join(dir, 'objects')).filter(f => /^[0-9a-f]{2}$/.test(f)), [], 'no loose object')
  for (const p of packs) git(['verify-pack', join(dir, 'objects', 'pack', p)])
  t.pass('verify-pack accepts every pack')
  // Every commit, its tree and blobs: there, with the right content.
  const check = git(['cat-file', '--batch'], made.map(m => `${m.commit}:train.py\n${m.commit}:extra.py\n`).join(''))
  t.equal(check, made.map(m => {
    const a = text(m.i)
    const b = `x = ${m.i % 3}\n`
    return `${objectId('sha1', objectBytes('blob', Buffer.from(a)))} blob ${a.length}\n${a}\n${objectId('sha1', objectBytes('blob', Buffer.from(b)))} blob ${b.length}\n${b}\n`
  }).join(''), 'cat-file --batch reads every file of every commit')
  const m = made[made.length - 1]
  t.match(git(['cat-file', '-p', m.commit]), new RegExp(`^parent ${seed}$[\\s\\S]*\\n\\ntry ${m.i}\\n$`, 'm'), 'a commit reads back with its parent and message')
  git(['fsck', '--strict'])
  t.pass('fsck --strict is content after the repacks')
})

t.test('the CRC-32 of a Node without zlib.crc32 is zlib\'s, chained as the index uses it', async t => {
  const native = (zlib as { crc32?: (d: Buffer, v?: number) => number }).crc32
  t.equal(tableCrc32(Buffer.from('123456789')), 0xcbf43926, 'the check value of CRC-32/ISO-HDLC')
  if (!native) return
  for (const n of [2, 7, 1000, 65537]) {
    const a = randomBytes(n)
    const b = randomBytes(n >> 1)
    t.equal(tableCrc32(b, tableCrc32(a)), native(b, native(a)), `${n} bytes, then ${n >> 1}`)
  }
})

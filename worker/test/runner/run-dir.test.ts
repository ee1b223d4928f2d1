import t from 'tap'
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { execFileSync, spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { prepareRunDir } from '../../src/runner/run-dir.ts'

function setup(t: import('tap').Test) {
  const root = t.testdir({ trainer: { 'prepare.py': 'LOCKED = 1\n', 'train.py': 'ORIGINAL = 1\n' }, run: {} })
  return { trainerDir: join(root, 'trainer'), runDir: join(root, 'run') }
}

t.test('writes the unit files into the run directory', async t => {
  const { trainerDir, runDir } = setup(t)
  await prepareRunDir({ runDir, trainerDir, files: { 'train.py': 'EDITED = 2\n' } })
  t.equal(readFileSync(join(runDir, 'train.py'), 'utf8'), 'EDITED = 2\n')
})

t.test('copies prepare.py from the trainer directory, read-only', async t => {
  const { trainerDir, runDir } = setup(t)
  await prepareRunDir({ runDir, trainerDir, files: { 'train.py': '' } })
  t.equal(readFileSync(join(runDir, 'prepare.py'), 'utf8'), 'LOCKED = 1\n')
  t.equal(statSync(join(runDir, 'prepare.py')).mode & 0o222, 0)
})

t.test('the locked copy is a copy: the original stays writable and separate', async t => {
  const { trainerDir, runDir } = setup(t)
  await prepareRunDir({ runDir, trainerDir, files: { 'train.py': '' } })
  t.not(statSync(join(runDir, 'prepare.py')).ino, statSync(join(trainerDir, 'prepare.py')).ino)
  t.not(statSync(join(trainerDir, 'prepare.py')).mode & 0o200, 0)
})

t.test('files from a previous run are removed, including a read-only prepare.py', async t => {
  const { trainerDir, runDir } = setup(t)
  await prepareRunDir({ runDir, trainerDir, files: { 'train.py': '', 'extra.py': '' } })
  await prepareRunDir({ runDir, trainerDir, files: { 'train.py': 'x = 1\n' } })
  t.notOk(existsSync(join(runDir, 'extra.py')))
  t.equal(readFileSync(join(runDir, 'train.py'), 'utf8'), 'x = 1\n')
})

// Node gives names as UTF-8, and a name that is not (the byte 0xff) came back as U+FFFD: its
// removal found nothing to remove, and the file stayed for the next run, of anyone's code, to read.
// Through the runner and bwrap, the second of two runs read what the first wrote to `stash\xff`.
t.test('names that are not UTF-8 are removed too: nothing of a run is left for the next', async t => {
  const { trainerDir, runDir } = setup(t)
  const odd = (name: string) => Buffer.from(join(runDir, name), 'latin1')
  writeFileSync(odd('stash\xff'), 'weights of the last run')
  mkdirSync(odd('dir\xfe'))
  writeFileSync(Buffer.concat([odd('dir\xfe'), Buffer.from('/inner')]), 'x')
  await prepareRunDir({ runDir, trainerDir, files: { 'train.py': '' } })
  t.same(readdirSync(Buffer.from(runDir), { encoding: 'buffer' }).map(b => b.toString('latin1')).sort(), ['prepare.py', 'train.py'])
})

t.test('a unit may not supply a locked file', async t => {
  const { trainerDir, runDir } = setup(t)
  await t.rejects(prepareRunDir({ runDir, trainerDir, files: { 'prepare.py': 'evil' } }), /locked/)
})

t.test('file names that could escape the directory are refused', async t => {
  const { trainerDir, runDir } = setup(t)
  for (const name of ['..', '../x.py', '.hidden', 'a/b.py']) {
    await t.rejects(prepareRunDir({ runDir, trainerDir, files: { [name]: '' } }), /plain names/, name)
  }
})

t.test('a missing locked file says which trainer directory was wrong', async t => {
  const { runDir } = setup(t)
  await t.rejects(prepareRunDir({ runDir, trainerDir: '/nonexistent', files: { 'train.py': '' } }), /\/nonexistent/)
})

t.test('a run folder a run left unreadable (folders of mode 000, the folder itself too) is emptied by a worker that is not root', async t => {
  // The sandbox's user is the worker's own outside, so train.py may chmod what it made, and the run
  // folder, to 000. A worker that is not root could then list or remove none of it, and every later
  // experiment failed to prepare its run folder. Run as an ordinary user (uid 65534 where the tests are root).
  const asRoot = process.getuid?.() === 0
  if (asRoot && !existsSync('/usr/bin/setpriv')) {
    t.comment('skipped: needs setpriv to act as an ordinary user')
    return
  }
  const { trainerDir, runDir } = setup(t)
  mkdirSync(join(runDir, 'x', 'y'), { recursive: true })
  writeFileSync(join(runDir, 'x', 'y', 'f'), 'left\n')
  mkdirSync(join(runDir, 'empty'))
  if (asRoot) execFileSync('chown', ['-R', '65534:65534', runDir])
  for (const d of [join(runDir, 'x'), join(runDir, 'empty'), runDir]) chmodSync(d, 0o000)
  const module = fileURLToPath(new URL('../../src/runner/run-dir.ts', import.meta.url))
  const script = `const { prepareRunDir } = await import(${JSON.stringify(module)})
await prepareRunDir({ runDir: process.env.RUN_DIR, trainerDir: process.env.TRAINER_DIR, files: { 'train.py': '# next\\n' } })
console.log('prepared')`
  const argv = [process.execPath, '--import=tsx', '--input-type=module', '-e', script]
  const r = spawnSync(asRoot ? 'setpriv' : argv[0], asRoot ? ['--reuid=65534', '--regid=65534', '--clear-groups', ...argv] : argv.slice(1), {
    env: { ...process.env, RUN_DIR: runDir, TRAINER_DIR: trainerDir }, encoding: 'utf8',
  })
  t.match(r.stdout, /prepared/, `the next run folder is prepared: ${r.stderr.trim().split('\n').filter(l => /Error/.test(l)).slice(0, 2).join(' ')}`)
  t.same(readdirSync(runDir).sort(), ['prepare.py', 'train.py'], 'and holds only the next run\'s files')
})

import t from 'tap'
import { readFileSync, statSync, existsSync } from 'node:fs'
import { join } from 'node:path'
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

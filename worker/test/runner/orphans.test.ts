import t from 'tap'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { execa } from 'execa'
import { isLeftover, killLeftover, parseStat, pidFileOf, recordGroup, type GroupRecord } from '../../src/runner/leftovers.ts'
import { until } from '../../../shared/test/support/until.ts'

// `kill -9` of a worker must not leave train.py running on the GPU: the launcher takes the
// trainer's whole process group with it, and a worker that starts again kills what a previous
// one recorded and left behind.
const FAKE = readFileSync(new URL('../fixtures/fake_train.py', import.meta.url), 'utf8')
const fixture = fileURLToPath(new URL('../fixtures/runner-process.ts', import.meta.url))

/** Live (not zombie) processes of a process group, from /proc. */
function members(pgid: number): number[] {
  const out: number[] = []
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8')
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      if (Number(rest[2]) === pgid && rest[0] !== 'Z') out.push(Number(name))
    } catch { /* gone meanwhile */ }
  }
  return out
}

/**
 * The fake trainer's live children (`python -c "...sleep(3600)" <tag>`): found by their command
 * line, whatever their PID namespace. (The tag also travels in the launcher's and bwrap's argv.)
 */
function tagged(tag: string): number[] {
  const out: number[] = []
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    try {
      const argv = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0')
      if (argv[1] === '-c' && argv[2]?.includes('sleep(3600)') && argv[3] === tag && !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${name}/stat`, 'utf8'))) out.push(Number(name))
    } catch { /* gone meanwhile */ }
  }
  return out
}

for (const sandboxed of [false, true]) {
  t.test(`a worker killed with SIGKILL takes its trainer and the trainer's children with it${sandboxed ? ' (in the sandbox)' : ''}`, async t => {
    const runDir = t.testdir({ 'train.py': FAKE })
    const pidfile = join(runDir, 'children')
    const tag = `orphan-test-${process.pid}-${sandboxed}`
    const worker = execa(process.execPath, ['--import', 'tsx', fixture, runDir], { reject: false, all: true, env: { ARG_SANDBOX: sandboxed ? '1' : '', FAKE_PIDFILE: pidfile, FAKE_TAG: tag, NODE_OPTIONS: '' } })
    t.teardown(() => { worker.kill('SIGKILL') })
    await until('the trainer to start its children', () => existsSync(pidfile) && readFileSync(pidfile, 'utf8').split('\n').length === 2 && existsSync(pidFileOf(runDir)), { everyMs: 50 })
    const record = JSON.parse(readFileSync(pidFileOf(runDir), 'utf8')) as GroupRecord
    const group = members(record.pgid)
    // In the sandbox, train.py has a session (and group) of its own: bwrap --new-session.
    t.ok(group.length >= (sandboxed ? 2 : 3), `the trainer's group is running: ${group.length} processes (launcher, ${sandboxed ? 'bwrap' : 'train.py, 2 children'})`)
    await until('the trainer\'s children to show', () => tagged(tag).length === 2, { everyMs: 50 })
    t.pass('the trainer\'s two children are running')

    worker.kill('SIGKILL')
    await worker
    // Dead, whenever the kernel gets to it: the wait has no deadline of its own (shared/test/support/until.ts).
    await until('the trainer\'s group and children to die', () => members(record.pgid).length === 0 && tagged(tag).length === 0, { everyMs: 50,
      describe: () => `group ${record.pgid}: ${members(record.pgid).join(' ')}; children: ${tagged(tag).join(' ')}` })
    t.pass('nothing of the group is left, nor the trainer\'s children')
  })
}

t.test('a trainer left running by a previous worker is killed on the next start', async t => {
  const runDir = join(t.testdir({}), 'run')
  // A leftover: a process group of its own, as the runner starts the trainer, that nobody stops.
  const leftover = execa('python3', ['-c', 'import subprocess, sys, time; subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"]); time.sleep(600)'], { detached: true, reject: false })
  t.teardown(() => { try { process.kill(-leftover.pid!, 'SIGKILL') } catch { /* gone */ } })
  await until('the leftover and its child', () => members(leftover.pid!).length === 2, { everyMs: 50 })
  await recordGroup(runDir, leftover.pid!)
  t.equal(await killLeftover(runDir), leftover.pid, 'it is recognised and killed')
  await until('the group to die', () => members(leftover.pid!).length === 0, { everyMs: 50 })
  t.pass('with its child')
  t.notOk(existsSync(pidFileOf(runDir)), 'and forgotten')
  t.equal(await killLeftover(runDir), null, 'a second start finds nothing')
})

t.test('a recorded pid that now belongs to another process is left alone', async t => {
  const runDir = join(t.testdir({}), 'run')
  await recordGroup(runDir, process.pid) // this test process: alive, but not the recorded start time
  const record = JSON.parse(readFileSync(pidFileOf(runDir), 'utf8')) as GroupRecord
  const { writeFile } = await import('node:fs/promises')
  await writeFile(pidFileOf(runDir), JSON.stringify({ ...record, startTicks: record.startTicks! - 1 }))
  t.equal(await killLeftover(runDir), null)
  t.ok(process.pid, 'and this process is still here')
})

t.test('whether a record is a leftover: same boot, same start time, or a group whose leader is gone', async t => {
  const r: GroupRecord = { pgid: 4242, startTicks: 100, bootId: 'b1', startedAt: '' }
  t.ok(isLeftover(r, { bootId: 'b1', leader: { startTicks: 100 }, groupExists: true }))
  t.notOk(isLeftover(r, { bootId: 'b1', leader: { startTicks: 101 }, groupExists: true }), 'pid reused')
  t.notOk(isLeftover(r, { bootId: 'b2', leader: { startTicks: 100 }, groupExists: true }), 'after a reboot')
  t.ok(isLeftover(r, { bootId: 'b1', leader: null, groupExists: true }), 'leader gone, members left')
  t.notOk(isLeftover(r, { bootId: 'b1', leader: null, groupExists: false }), 'all gone')
  t.notOk(isLeftover({ ...r, startTicks: null }, { bootId: 'b1', leader: null, groupExists: true }), 'no identity recorded: never killed')
  t.same(parseStat('12 (a (weird) name) S 1 12 12 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 777 0'), { state: 'S', startTicks: 777 })
})

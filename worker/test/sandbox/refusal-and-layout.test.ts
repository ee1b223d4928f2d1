import t from 'tap'
import { findPython } from '@autoresearch-grid/trainer'
import { bwrapCommand, INSIDE, sandboxEnvironment, type HostLayout } from '../../src/sandbox/bwrap.ts'
import { chooseSandbox, NoSandboxError, UNSAFE_FLAG } from '../../src/sandbox/choose.ts'
import { detectSandbox, diagnoseUserNamespaces } from '../../src/sandbox/detect.ts'
import { minimalCover, probeHost } from '../../src/sandbox/host.ts'

// The sandbox's refusals and its command line, without running anything hostile: no bwrap means
// no work (with the fix in words and the flag that overrides it), the AppArmor diagnosis, and what
// bwrapCommand does and does not put inside.
const python = await findPython().catch(() => null)

const HOST: HostLayout = {
  bwrap: '/usr/bin/bwrap',
  rootEntries: [{ path: '/bin', symlink: 'usr/bin' }, { path: '/lib64', symlink: null }],
  system: ['/usr', '/etc/ld.so.cache', '/etc/ld.so.conf', '/etc/ld.so.conf.d', '/etc/alternatives', '/etc/localtime', '/sys'],
  python: ['/opt/venv'],
  devices: ['/dev/nvidia0', '/dev/nvidiactl'],
  procReadOnly: ['/proc/sys', '/proc/sysrq-trigger'],
  procHidden: ['/proc/kcore'],
  uid: 65534,
  gid: 65534,
}
const HOME = '/home/alice'

/** [flag, source, destination] of every mount option in a bwrap command line. */
function mounts(argv: string[]): [string, string, string][] {
  const out: [string, string, string][] = []
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--') break
    if (['--bind', '--ro-bind', '--dev-bind', '--bind-try', '--ro-bind-try', '--dev-bind-try'].includes(argv[i])) out.push([argv[i], argv[i + 1], argv[i + 2]])
  }
  return out
}

const noPython = python ? false : 'needs the trainer\'s Python'

t.test('without bubblewrap the worker refuses other people\'s code, naming the fix and the override', { skip: noPython }, async t => {
  if (!python) return
  const found = await detectSandbox(python.path, { bwrap: '/nonexistent/bwrap', fresh: true })
  t.equal(found.ok, false)
  if (!found.ok) {
    t.match(found.problem, /not installed/)
    t.match(found.fix, /apt-get install bubblewrap/)
    t.match(found.fix, /AUTORESEARCH_BWRAP/)
  }
  const saved = process.env.AUTORESEARCH_BWRAP
  process.env.AUTORESEARCH_BWRAP = '/nonexistent/bwrap'
  t.teardown(() => { if (saved === undefined) delete process.env.AUTORESEARCH_BWRAP; else process.env.AUTORESEARCH_BWRAP = saved })
  const refused = await chooseSandbox(python.path).then(() => null, (e: Error) => e)
  t.type(refused, NoSandboxError, 'chooseSandbox throws')
  t.match(refused?.message, /refusing to run other contributors' code/)
  t.match(refused?.message, /apt-get install bubblewrap/, 'the fix')
  t.ok(refused?.message.includes(UNSAFE_FLAG) && UNSAFE_FLAG === '--unsafe-no-sandbox', 'and the flag that overrides it')
  const solo = await chooseSandbox(python.path, { allowWithout: true })
  t.equal(solo.host, null)
  t.match(solo.how, /WARNING: no sandbox/)
  const unsafe = await chooseSandbox(python.path, { unsafeNoSandbox: true })
  t.equal(unsafe.host, null)
  t.match(unsafe.how, /NO SANDBOX \(--unsafe-no-sandbox\)/)
})

t.test('diagnoseUserNamespaces: the Ubuntu AppArmor restriction and its fix', async t => {
  const apparmor = diagnoseUserNamespaces(p => (p === '/proc/sys/kernel/apparmor_restrict_unprivileged_userns' ? '1' : null), 'setting up uid map: Permission denied')
  t.equal(apparmor.ok, false)
  t.match(apparmor.problem, /setting up uid map: Permission denied/)
  t.match(apparmor.fix, /AppArmor/)
  t.match(apparmor.fix, /profile bwrap \/usr\/bin\/bwrap flags=\(unconfined\)/)
  t.match(apparmor.fix, /userns,/)
  t.match(apparmor.fix, /systemctl reload apparmor/)
  t.match(apparmor.fix, /kernel\.apparmor_restrict_unprivileged_userns=0/)
  t.match(diagnoseUserNamespaces(p => (p === '/proc/sys/kernel/apparmor_restrict_unprivileged_userns' ? '0' : p.endsWith('unprivileged_userns_clone') ? '0' : null), '').fix, /unprivileged_userns_clone=1/)
  t.match(diagnoseUserNamespaces(p => (p.endsWith('max_user_namespaces') ? '0' : null), '').fix, /max_user_namespaces/)
  t.match(diagnoseUserNamespaces(() => null, '').fix, /container/)
})

t.test('bwrapCommand: fresh namespaces, nothing of HOME, /etc only for the loader, writable only where asked', async t => {
  const env = sandboxEnvironment({ HOME, PATH: '/usr/bin', TMPDIR: '/home/alice/tmp', XDG_CONFIG_HOME: '/home/alice/.config', USER: 'alice' }, { AUTORESEARCH_DATA: INSIDE.data })
  const argv = bwrapCommand(HOST, {
    mounts: [
      { host: '/state/run', inside: INSIDE.run, writable: true },
      { host: '/data/train.bin', inside: `${INSIDE.data}/train.bin` },
      { host: '/cache/compile/by-source/abc', inside: `${INSIDE.cache}/compile`, writable: true },
    ],
    env, cwd: INSIDE.run, command: ['python', 'train.py'],
  })
  const flags = argv.slice(0, argv.indexOf('--'))
  for (const f of ['--unshare-all', '--unshare-user', '--die-with-parent', '--clearenv']) t.ok(flags.includes(f), f)
  // The sandbox stays in the launcher's session and group, which has no terminal: a session of its
  // own let PID 1 escape a kill of the group during bwrap's start-up (runner/orphans.test.ts).
  t.notOk(flags.includes('--new-session'), 'no --new-session')
  t.equal(flags[flags.indexOf('--cap-drop') + 1], 'ALL', '--cap-drop ALL')
  t.notOk(flags.includes('--share-net'), 'no --share-net')
  t.same(argv.slice(argv.indexOf('--') + 1), ['python', 'train.py'])
  t.equal(flags[flags.indexOf('--chdir') + 1], INSIDE.run)

  const m = mounts(argv)
  t.same(m.filter(([f]) => f === '--bind').map(([, s, d]) => [s, d]), [['/state/run', INSIDE.run], ['/cache/compile/by-source/abc', `${INSIDE.cache}/compile`]],
    'the only writable binds are the two requested')
  t.same(m.filter(([f]) => f === '--dev-bind').map(([, s]) => s), HOST.devices, 'device binds are the GPU nodes only')
  t.notOk(m.some(([, s]) => s === HOME || s.startsWith(`${HOME}/`)), 'nothing of HOME is mounted')
  t.same(m.filter(([, s]) => s.startsWith('/etc')).map(([, s]) => s).sort(), ['/etc/alternatives', '/etc/ld.so.cache', '/etc/ld.so.conf', '/etc/ld.so.conf.d', '/etc/localtime'], '/etc: the loader\'s files only')
  t.ok(flags.join(' ').includes(`--tmpfs /sandbox`) && flags.join(' ').includes('--remount-ro /sandbox'), '/sandbox is a read-only tmpfs around the mounts')
  t.ok(flags.join(' ').includes(`--tmpfs ${INSIDE.home}`), 'HOME is a private tmpfs')
  t.ok(flags.join(' ').includes('--tmpfs /tmp'), '/tmp is private')

  const setenv: Record<string, string> = {}
  for (let i = 0; i < flags.length; i++) if (flags[i] === '--setenv') setenv[flags[i + 1]] = flags[i + 2]
  t.equal(setenv.HOME, INSIDE.home, 'HOME inside is the private one')
  t.equal(setenv.TMPDIR, '/tmp')
  t.notOk(Object.values(setenv).some(v => v.includes(HOME)), 'no variable names the host HOME')
})

t.test('the probed host: /etc beyond the loader\'s files is never mounted, nor HOME', { skip: noPython }, async t => {
  if (!python) return
  const host = await probeHost('bwrap', python.path)
  const etc = [...host.system, ...host.python].filter(p => p === '/etc' || p.startsWith('/etc/'))
  t.ok(etc.every(p => ['/etc/ld.so.cache', '/etc/ld.so.conf', '/etc/ld.so.conf.d', '/etc/alternatives', '/etc/localtime'].includes(p)), etc.join(' '))
  const home = process.env.HOME
  if (home) t.notOk([...host.system, ...host.python].includes(home), 'HOME is not mounted whole')
})

t.test('/proc/sys (and /proc/sysrq-trigger) are read-only inside: with the worker running as root the sandbox user is the host\'s root', async t => {
  // bwrap maps the sandbox's uid to the worker's; for a worker running as root that is kuid 0, and
  // /proc/sys/* is writable by kuid 0 (sysctl permissions are by uid, not capability). bwrap's own
  // cover of /proc/sys is skipped when the directory is not writable at setup, and it is not
  // (mode 555). hostile-corpus shows the effect: kernel.core_pattern opens for writing.
  const argv = bwrapCommand(HOST, { mounts: [{ host: '/state/run', inside: INSIDE.run, writable: true }], env: {}, cwd: INSIDE.run, command: ['true'] })
  const m = mounts(argv)
  t.ok(m.some(([f, s, d]) => f === '--ro-bind' && s === '/proc/sys' && d === '/proc/sys'), '--ro-bind /proc/sys /proc/sys after --proc /proc')
})

t.test('minimalCover refuses a folder that holds HOME (it would mount all of HOME: ~/.ssh, the worker\'s state)', async t => {
  // A Python whose sys.path, prefix or LD_LIBRARY_PATH names a parent of HOME (/home, or a relative
  // LD_LIBRARY_PATH entry resolved against the worker's cwd) gets it mounted read-only whole.
  t.same(minimalCover(['/home'], ['/usr'], [HOME]), [], '/home holds /home/alice')
  t.same(minimalCover(['/'], ['/usr'], [HOME]), [], '/ is refused')
  t.same(minimalCover([HOME], ['/usr'], [HOME]), [], 'HOME itself is refused')
})

import t from 'tap'
import { execa } from 'execa'
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { basename, dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseAllDocuments, parse as parseYaml } from 'yaml'
import { bundle } from '../../scripts/bundle.ts'

// The deployment files must agree with the code they deploy: every CLI command and flag they use
// exists (asked of the bundled CLIs' --help, the very files the images run), every environment
// variable they set is one the code reads, ports are the coordinator's, volumes sit where the
// coordinator and the workers write, and the Dockerfiles and images they name exist. A rename in
// the code fails here until the manifests follow.
const root = fileURLToPath(new URL('../../', import.meta.url))
const deploy = join(root, 'deploy')
const read = (p: string) => readFileSync(join(root, p), 'utf8')

function filesUnder(dir: string): string[] {
  return readdirSync(join(root, dir)).flatMap(n => {
    const p = join(dir, n)
    if (n === 'node_modules' || n === 'test') return []
    return statSync(join(root, p)).isDirectory() ? filesUnder(p) : [p]
  })
}

/** Every deployment file (not the tests, not package.json) plus the newcomer's guide. */
const MANIFESTS = filesUnder('deploy').filter(p => basename(p) !== 'package.json').sort()
const DOCS = 'docs/DEPLOY.md'

// ---------------------------------------------------------------------------------------------
// What the code reads from the environment: `process.env.X`, `env.X`, `env['X']` in TypeScript,
// `os.environ.get("X")` / `os.environ["X"]` in Python; tests excluded.

const SOURCE_DIRS = ['shared/src', 'coordinator/src', 'worker/src', 'trainer/js', 'trainer', 'worker/safety']
function envReadByCode(): Set<string> {
  const names = new Set<string>()
  const patterns = [/\benv(?:\?)?\.([A-Z][A-Z0-9_]+)\b/g, /\benv\[\s*['"]([A-Z][A-Z0-9_]+)['"]\s*\]/g, /os\.environ(?:\.get\(|\[)\s*["']([A-Z][A-Z0-9_]+)["']/g]
  for (const dir of SOURCE_DIRS) {
    for (const n of readdirSync(join(root, dir), { recursive: true }) as string[]) {
      if (!/\.(ts|py)$/.test(n) || /(^|\/)(test|tests|node_modules)\//.test(n)) continue
      const text = readFileSync(join(root, dir, n), 'utf8')
      for (const re of patterns) for (const m of text.matchAll(re)) names.add(m[1])
    }
  }
  return names
}
const READ = envReadByCode()

// ---------------------------------------------------------------------------------------------
// The CLIs as shipped: `--help` of the bundles, parsed into options, subcommands and arguments.

interface HelpSpec { options: Map<string, boolean>; commands: Set<string>; args: { required: boolean }[] }

let release = ''
const helpCache = new Map<string, Promise<HelpSpec>>()
function help(cli: 'coordinator' | 'worker', path: string[]): Promise<HelpSpec> {
  const key = [cli, ...path].join(' ')
  let p = helpCache.get(key)
  if (!p) {
    p = execa(process.execPath, [join(release, `${cli}.mjs`), ...path, '--help'], { env: { PATH: process.env.PATH ?? '' }, extendEnv: false }).then(r => parseHelp(r.stdout))
    helpCache.set(key, p)
  }
  return p
}

function parseHelp(text: string): HelpSpec {
  const spec: HelpSpec = { options: new Map(), commands: new Set(), args: [] }
  const usage = /^Usage: \S+(?: [a-z][\w-]*)*((?: \[options\]| \[command\]| <[^>]+>| \[[^\]]+\])*)/m.exec(text)?.[1] ?? ''
  for (const m of usage.matchAll(/ (<[^>]+>|\[[^\]]+\])/g)) if (m[1] !== '[options]' && m[1] !== '[command]') spec.args.push({ required: m[1].startsWith('<') })
  let section = ''
  for (const line of text.split('\n')) {
    if (/^Options:/.test(line)) section = 'options'
    else if (/^Commands:/.test(line)) section = 'commands'
    else if (/^\S/.test(line)) section = ''
    const opt = section === 'options' && /^ {2}(?:-\w, )?(--[\w-]+)( <[^>]+>| \[[^\]]+\])?/.exec(line)
    if (opt) spec.options.set(opt[1], Boolean(opt[2]))
    const cmd = section === 'commands' && /^ {2}([a-z][\w-]*)/.exec(line)
    if (cmd && cmd[1] !== 'help') spec.commands.add(cmd[1])
  }
  return spec
}

/** Checks one invocation (the words after coordinator.mjs / worker.mjs) against the CLI; returns what is wrong. */
async function checkInvocation(cli: 'coordinator' | 'worker', words: string[]): Promise<string[]> {
  const problems: string[] = []
  const path: string[] = []
  let spec = await help(cli, path)
  let positionals = 0
  for (let i = 0; i < words.length; i++) {
    const w = words[i]
    if (w.startsWith('--')) {
      const name = w.split('=')[0]
      if (name === '--help') continue
      if (!spec.options.has(name)) { problems.push(`${[cli, ...path].join(' ')} has no option ${name}`); continue }
      if (spec.options.get(name) && !w.includes('=')) i++
    } else if (positionals === 0 && spec.commands.has(w)) {
      path.push(w)
      spec = await help(cli, path)
    } else {
      positionals++
    }
  }
  if (spec.commands.size && path.length === 0 && positionals > 0) problems.push(`${cli} has no command "${words.find(w => !w.startsWith('-'))}"`)
  if (positionals > spec.args.length) problems.push(`${[cli, ...path].join(' ')} takes ${spec.args.length} argument(s), given ${positionals}: ${words.join(' ')}`)
  const required = spec.args.filter(a => a.required).length
  if (positionals < required && !words.includes('--help')) problems.push(`${[cli, ...path].join(' ')} needs ${required} argument(s), given ${positionals}: ${words.join(' ')}`)
  return problems
}

/** Shell-like words: quotes removed, stops at a comment, pipe, redirection, `;`, `&&` or a closing backtick/paren. */
function words(rest: string): string[] {
  const cut = rest.split(/\s#|[|;&>`)]/)[0]
  return [...cut.matchAll(/"([^"]*)"|'([^']*)'|(\S+)/g)].map(m => m[1] ?? m[2] ?? m[3])
}

type Invocation = { file: string; line: number; cli: 'coordinator' | 'worker'; words: string[] }

/**
 * Command lines written as text: `... coordinator.mjs <words>` in scripts, units and comments (a
 * whole-line comment is read as the command it shows; a trailing one is dropped), and in the
 * guide's code blocks.
 */
function textInvocations(file: string): Invocation[] {
  const out: Invocation[] = []
  let fenced = false
  read(file).split('\n').forEach((raw, i) => {
    if (file.endsWith('.md')) {
      if (raw.startsWith('```')) fenced = !fenced
      if (!fenced) return
    }
    const line = /^\s*#/.test(raw) ? raw.replace(/^\s*#+/, '') : raw.split(/\s#/)[0]
    for (const m of line.matchAll(/\b(coordinator|worker)\.mjs["']?(?=[\s"'`]|$)(.*)$/g)) {
      if (/^"\s*[\],]/.test(line.slice((m.index ?? 0) + m[1].length + 4))) continue // a JSON array: Dockerfile exec form, handled below
      out.push({ file, line: i + 1, cli: m[1] as 'coordinator' | 'worker', words: words(m[2]) })
    }
  })
  return out
}

// ---------------------------------------------------------------------------------------------
// The manifests, parsed.

interface Dockerfile { env: Record<string, string>; volumes: string[]; expose: number[]; entrypoint: string[]; cmd: string[]; copyTo: string[] }
function parseDockerfile(file: string): Dockerfile {
  const lines = read(file).replace(/\\\n/g, ' ').split('\n').filter(l => !/^\s*#/.test(l))
  const d: Dockerfile = { env: {}, volumes: [], expose: [], entrypoint: [], cmd: [], copyTo: [] }
  for (const l of lines) {
    const [, instr, rest] = /^\s*([A-Z]+)\s+(.*)$/.exec(l) ?? []
    if (instr === 'ENV') for (const m of rest.matchAll(/([A-Z_][A-Z0-9_]*)=(\S+)/g)) d.env[m[1]] = m[2]
    if (instr === 'VOLUME') d.volumes.push(...(rest.startsWith('[') ? JSON.parse(rest) as string[] : rest.split(/\s+/)))
    if (instr === 'EXPOSE') d.expose.push(...rest.split(/\s+/).map(p => Number(p.split('/')[0])))
    if (instr === 'ENTRYPOINT') d.entrypoint = JSON.parse(rest)
    if (instr === 'CMD') d.cmd = JSON.parse(rest)
    if (instr === 'COPY' && !rest.startsWith('--from')) d.copyTo.push(rest.split(/\s+/).pop()!)
  }
  return d
}

/** `[..., "/opt/x/coordinator.mjs", ...args]` → the CLI and its words. */
function cliOf(argv: string[]): { cli: 'coordinator' | 'worker'; words: string[]; script: string } | null {
  const i = argv.findIndex(a => /(coordinator|worker)\.mjs$/.test(a))
  if (i < 0) return null
  return { cli: /coordinator\.mjs$/.test(argv[i]) ? 'coordinator' : 'worker', words: argv.slice(i + 1), script: argv[i] }
}

/** The value of `--flag v` or `--flag=v` in words. */
function flag(ws: string[], name: string): string | undefined {
  for (let i = 0; i < ws.length; i++) {
    if (ws[i] === name) return ws[i + 1]
    if (ws[i].startsWith(`${name}=`)) return ws[i].slice(name.length + 1)
  }
  return undefined
}

const compose = parseYaml(read('deploy/docker-compose.yml'), { merge: true }) as {
  services: Record<string, { image?: string; build?: { context: string; dockerfile: string }; command?: string[]; environment?: Record<string, string>; ports?: string[]; volumes?: string[];
    deploy?: { resources?: { reservations?: { devices?: { driver: string; device_ids?: string[]; count?: number; capabilities: string[] }[] } } } }>
}
const k8sDocs = MANIFESTS.filter(f => f.startsWith('deploy/k8s/')).flatMap(f => parseAllDocuments(read(f)).map(d => ({ file: f, doc: d.toJS() as K8s })))
type Container = { name: string; image: string; command?: string[]; args?: string[]; env?: { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }[];
  ports?: { name?: string; containerPort: number }[]; volumeMounts?: { name: string; mountPath: string }[]; resources?: { limits?: Record<string, unknown> } }
type K8s = { kind: string; metadata: { name: string }; stringData?: Record<string, string>; data?: Record<string, string>;
  spec: { template?: { spec: { containers: Container[]; volumes?: { name: string; persistentVolumeClaim?: { claimName: string } }[] } }; ports?: { port: number; targetPort: number | string }[];
    volumeClaimTemplates?: { metadata: { name: string } }[]; selector?: Record<string, unknown> } }
const k8s = (kind: string) => k8sDocs.filter(d => d.doc.kind === kind)

/** systemd: `Key=value` lines of [Service] (Environment= may repeat). */
function unit(file: string): { env: Record<string, string>; get: (k: string) => string[] } {
  const lines = read(file).split('\n').filter(l => !/^\s*[#;]/.test(l))
  const get = (k: string) => lines.filter(l => l.startsWith(`${k}=`)).map(l => l.slice(k.length + 1).trim())
  const env: Record<string, string> = {}
  for (const e of get('Environment')) for (const m of e.matchAll(/"?([A-Z_][A-Z0-9_]*)=([^"\s]*)"?/g)) env[m[1]] = m[2]
  return { env, get }
}

const dockerfileOf = (service: { build?: { context: string; dockerfile: string } }) => resolve(deploy, service.build!.context, service.build!.dockerfile)
const coordinatorImage = parseDockerfile('deploy/Dockerfile.coordinator')
const workerImage = parseDockerfile('deploy/Dockerfile.worker')
const imageFor: Record<string, Dockerfile> = {}
for (const s of Object.values(compose.services)) if (s.image && s.build) imageFor[s.image] = parseDockerfile(relative(root, dockerfileOf(s)))

// ---------------------------------------------------------------------------------------------

t.before(async () => {
  const tmp = await mkdtemp(join(tmpdir(), 'arg-manifests-'))
  t.teardown(() => rm(tmp, { recursive: true, force: true }))
  release = (await bundle(join(tmp, 'dist'))).outDir
})

t.test('the deployment files are all here', async t => {
  for (const f of ['deploy/Dockerfile.coordinator', 'deploy/Dockerfile.worker', 'deploy/docker-compose.yml', 'deploy/k8s/coordinator.yaml', 'deploy/k8s/worker.yaml', 'deploy/k8s/secret.yaml',
    'deploy/slurm/worker.sbatch', 'deploy/systemd/autoresearch-grid-coordinator.service', 'deploy/systemd/autoresearch-grid-worker@.service', DOCS]) {
    t.ok(existsSync(join(root, f)), f)
  }
  t.same(k8s('Deployment').map(d => d.doc.metadata.name), ['autoresearch-grid-coordinator'])
  t.same(k8s('StatefulSet').map(d => d.doc.metadata.name), ['autoresearch-grid-worker'])
  t.equal(k8s('PersistentVolumeClaim').length, 1)
  t.equal(k8s('Service').length, 1)
  t.equal(k8s('Secret').length, 1)
})

t.test('every coordinator/worker command and flag in a manifest, script, unit or the guide exists in the CLIs', async t => {
  const invocations: Invocation[] = [...MANIFESTS, DOCS].flatMap(textInvocations)
  for (const [file, img] of [['deploy/Dockerfile.coordinator', coordinatorImage], ['deploy/Dockerfile.worker', workerImage]] as const) {
    const c = cliOf([...img.entrypoint, ...img.cmd])
    t.ok(c, `${file}: ENTRYPOINT runs a CLI of the bundle`)
    if (c) invocations.push({ file, line: 0, cli: c.cli, words: c.words })
  }
  for (const [name, s] of Object.entries(compose.services)) {
    const img = imageFor[s.image ?? '']
    const c = img && cliOf([...img.entrypoint, ...(s.command ?? img.cmd)])
    t.ok(c, `compose service ${name} runs a CLI of the bundle`)
    if (c) invocations.push({ file: `deploy/docker-compose.yml (${name})`, line: 0, cli: c.cli, words: c.words })
  }
  for (const { file, doc } of k8sDocs) {
    for (const c of doc.spec?.template?.spec.containers ?? []) {
      const img = imageFor[c.image.split(':')[0]]
      const argv = c.command ? [...c.command, ...(c.args ?? [])] : [...img.entrypoint, ...(c.args ?? img.cmd)]
      const found = cliOf(argv)
      t.ok(found, `${file}: container ${c.name} runs a CLI of the bundle`)
      if (found) invocations.push({ file: `${file} (${c.name})`, line: 0, cli: found.cli, words: found.words })
    }
  }
  t.ok(invocations.length >= 15, `${invocations.length} invocations found`)
  const seen = new Set<string>()
  // Checked side by side: each distinct command's --help runs once (cached), all at once.
  const problems = await Promise.all(invocations.map(inv => checkInvocation(inv.cli, inv.words)))
  invocations.forEach((inv, i) => {
    seen.add(`${inv.cli} ${inv.words.filter(w => /^[a-z]+$/.test(w)).slice(0, 2).join(' ')}`)
    t.same(problems[i], [], `${inv.file}${inv.line ? `:${inv.line}` : ''}: ${inv.cli} ${inv.words.join(' ')}`)
  })
  t.ok([...seen].some(s => s.startsWith('coordinator start')) && [...seen].some(s => s.startsWith('worker join')), 'start and join are among them')
})

t.test('the checker catches a flag or command the CLI does not have', async t => {
  t.match(await checkInvocation('worker', ['join', 'http://x:8377', '--gpu', '0']), [/has no option --gpu/])
  t.match(await checkInvocation('coordinator', ['campaign', 'make', 'x']), [/takes 0 argument/])
  t.match(await checkInvocation('coordinator', ['serve']), [/no command "serve"/])
  t.same(await checkInvocation('coordinator', ['--data', '/d', 'start', '--port', '1']), [])
})

t.test('every environment variable a manifest sets is read by the code', async t => {
  for (const name of ['AUTORESEARCH_COORDINATOR_DATA', 'AUTORESEARCH_TOKEN', 'AUTORESEARCH_PYTHON', 'ANTHROPIC_API_KEY', 'LOG_LEVEL']) t.ok(READ.has(name), `the scan finds ${name} read by the code`)
  const set: { where: string; name: string; usedBy?: string }[] = []
  for (const [file, img] of [['deploy/Dockerfile.coordinator', coordinatorImage], ['deploy/Dockerfile.worker', workerImage]] as const) {
    for (const name of Object.keys(img.env)) set.push({ where: file, name })
  }
  for (const [svc, s] of Object.entries(compose.services)) for (const name of Object.keys(s.environment ?? {})) set.push({ where: `docker-compose.yml ${svc}`, name })
  for (const { file, doc } of k8sDocs) {
    for (const c of doc.spec?.template?.spec.containers ?? []) for (const e of c.env ?? []) set.push({ where: `${file} ${c.name}`, name: e.name })
    for (const name of Object.keys({ ...doc.stringData, ...doc.data })) set.push({ where: `${file} Secret`, name })
  }
  for (const f of MANIFESTS.filter(f => f.endsWith('.service'))) {
    const u = unit(f)
    for (const name of Object.keys(u.env)) set.push({ where: f, name, usedBy: u.get('ExecStart').join(' ') })
  }
  for (const f of MANIFESTS.filter(f => f.endsWith('.env.example'))) {
    const execs = MANIFESTS.filter(u => u.endsWith('.service')).flatMap(u => unit(u).get('ExecStart')).join(' ')
    for (const m of read(f).matchAll(/^#?([A-Z_][A-Z0-9_]*)=/gm)) set.push({ where: f, name: m[1], usedBy: execs })
  }
  for (const f of MANIFESTS.filter(f => /\.(sh|sbatch)$/.test(f))) {
    for (const m of read(f).matchAll(/^\s*export\s+([A-Z_][A-Z0-9_]*)=/gm)) set.push({ where: f, name: m[1] })
  }
  t.ok(set.length >= 10, `${set.length} settings found`)
  for (const s of set) {
    // A variable the code does not read may only feed the manifest's own command line (systemd's
    // ${COORDINATOR_URL}); our own prefix always means "read by the code".
    const ok = READ.has(s.name) || (!s.name.startsWith('AUTORESEARCH_') && s.usedBy !== undefined && s.usedBy.includes(`\${${s.name}}`))
    t.ok(ok, `${s.where}: ${s.name} is read by the code${READ.has(s.name) ? '' : ' (or expands in the command)'}`)
  }
  // Names mentioned anywhere (scripts' ${X:?...} checks, comments, the guide) must exist too.
  for (const f of [...MANIFESTS, DOCS]) {
    for (const name of new Set([...read(f).matchAll(/\bAUTORESEARCH_[A-Z0-9_]+\b/g)].map(m => m[0]))) t.ok(READ.has(name), `${f} mentions ${name}, which the code reads`)
  }
  t.notOk(READ.has('AUTORESEARCH_NO_SUCH_SETTING'), 'the scan does not accept just any name')
})

t.test('ports are the coordinator\'s: its default, exposed, published and addressed by the workers', async t => {
  const start = await execa(process.execPath, [join(release, 'coordinator.mjs'), 'start', '--help'], { env: { PATH: process.env.PATH ?? '' }, extendEnv: false })
  const port = Number(/--port <n>.*\(default: (\d+)\)/.exec(start.stdout)?.[1])
  t.ok(port > 0, `the coordinator's default port is ${port}`)
  t.same(coordinatorImage.expose, [port], 'Dockerfile.coordinator EXPOSEs it')
  t.equal(Number(flag(coordinatorImage.cmd, '--port') ?? port), port, 'and starts on it')
  t.equal(flag(coordinatorImage.cmd, '--host'), '0.0.0.0', 'listening beyond the container\'s loopback')
  const c = compose.services.coordinator
  t.same(c.ports?.map(p => Number(p.split(':').pop())), [port], 'compose publishes it')
  const dep = k8s('Deployment')[0].doc.spec.template!.spec.containers[0]
  const named = dep.ports!.find(p => p.name === 'http')!
  t.equal(named.containerPort, port, 'the Deployment\'s containerPort')
  t.equal(Number(flag(dep.args ?? coordinatorImage.cmd, '--port') ?? port), port, 'the Deployment starts on it')
  const svc = k8s('Service')[0].doc
  t.equal(svc.metadata.name, k8s('Deployment')[0].doc.metadata.name, 'the Service is named after the coordinator')
  t.same(svc.spec.ports!.map(p => [p.port, p.targetPort]), [[port, 'http']], 'the Service forwards it to the named port')
  t.equal(flag(unit('deploy/systemd/autoresearch-grid-coordinator.service').get('ExecStart')[0].split(/\s+/), '--port'), String(port), 'the systemd unit starts on it')
  // Workers address the coordinator by the name it has where they run.
  for (const [name, s] of Object.entries(compose.services).filter(([, s]) => s.image === 'autoresearch-grid/worker')) {
    t.equal(s.command![1], `http://coordinator:${port}`, `compose ${name} reaches the coordinator service`)
    t.ok(compose.services.coordinator, 'which exists')
  }
  const w = k8s('StatefulSet')[0].doc.spec.template!.spec.containers[0]
  t.equal(w.args![1], `http://${svc.metadata.name}:${port}`, 'the k8s workers reach the Service')
  t.equal(workerImage.cmd[1], `http://coordinator:${port}`, 'the worker image\'s default command matches compose')
  t.match(read('deploy/systemd/worker.env.example'), new RegExp(`^COORDINATOR_URL=http://\\S+:${port}$`, 'm'), 'the systemd example URL')
})

t.test('volumes are mounted where the coordinator and the workers write their data', async t => {
  const dataEnv = 'AUTORESEARCH_COORDINATOR_DATA'
  const imageData = coordinatorImage.env[dataEnv]
  t.ok(imageData, `Dockerfile.coordinator sets ${dataEnv}`)
  t.ok(coordinatorImage.volumes.includes(imageData), `and declares it a VOLUME (${imageData})`)
  t.ok(compose.services.coordinator.volumes?.some(v => v.split(':')[1] === imageData), 'compose mounts a volume there')
  const dep = k8s('Deployment')[0].doc.spec.template!.spec
  const depData = flag(dep.containers[0].args ?? [], '--data') ?? dep.containers[0].env?.find(e => e.name === dataEnv)?.value ?? imageData
  const mount = dep.containers[0].volumeMounts?.find(m => m.mountPath === depData)
  t.ok(mount, `the Deployment mounts a volume at ${depData}`)
  const claim = dep.volumes?.find(v => v.name === mount?.name)?.persistentVolumeClaim?.claimName
  t.equal(claim, k8s('PersistentVolumeClaim')[0].doc.metadata.name, 'backed by the PVC')
  const cu = unit('deploy/systemd/autoresearch-grid-coordinator.service')
  const unitData = flag(cu.get('ExecStart')[0].split(/\s+/), '--data') ?? cu.env[dataEnv]
  t.equal(unitData, `/var/lib/${cu.get('StateDirectory')[0]}`, 'the coordinator unit writes into its StateDirectory')

  const stateOf = (argv: string[]) => flag(argv, '--state')
  t.ok(workerImage.volumes.includes(stateOf(workerImage.cmd)!), 'Dockerfile.worker declares its --state a VOLUME')
  for (const [name, s] of Object.entries(compose.services).filter(([, s]) => s.image === 'autoresearch-grid/worker')) {
    t.ok(s.volumes?.some(v => v.split(':')[1] === stateOf(s.command!)), `compose ${name} mounts a volume at its --state`)
  }
  const ss = k8s('StatefulSet')[0].doc.spec
  const wc = ss.template!.spec.containers[0]
  const wm = wc.volumeMounts?.find(m => m.mountPath === stateOf(wc.args!))
  t.ok(wm, 'the StatefulSet mounts a volume at its --state')
  t.ok(ss.volumeClaimTemplates?.some(v => v.metadata.name === wm?.name), 'from its own claim per pod')
  const wu = unit('deploy/systemd/autoresearch-grid-worker@.service')
  t.equal(stateOf(wu.get('ExecStart')[0].split(/\s+/)), `/var/lib/${wu.get('StateDirectory')[0]}`, 'the worker unit writes into its StateDirectory')
  for (const img of [coordinatorImage, workerImage]) {
    const script = cliOf(img.entrypoint)!.script
    t.ok(img.copyTo.includes(dirname(script)), `${script} is where the release is copied`)
    t.ok(existsSync(join(release, basename(script))), `and ${basename(script)} is a file of the bundle`)
  }
})

t.test('images are built from the Dockerfiles here, out of the bundle', async t => {
  for (const [name, s] of Object.entries(compose.services)) {
    t.ok(s.build && existsSync(dockerfileOf(s)), `compose ${name} builds from ${s.build && relative(root, dockerfileOf(s))}`)
    t.equal(resolve(deploy, s.build!.context), join(root, 'dist'), 'with dist/ (pnpm bundle) as the context')
  }
  for (const { file, doc } of k8sDocs) {
    for (const c of doc.spec?.template?.spec.containers ?? []) t.ok(imageFor[c.image.split(':')[0]], `${file}: image ${c.image} is one compose builds from a Dockerfile here`)
  }
  for (const { file, doc } of k8sDocs) {
    for (const c of doc.spec?.template?.spec.containers ?? []) {
      for (const e of c.env ?? []) {
        const ref = e.valueFrom?.secretKeyRef
        if (ref) t.ok(k8s('Secret').some(s => s.doc.metadata.name === ref.name && ref.key in { ...s.doc.stringData, ...s.doc.data }), `${file}: ${e.name} comes from a key of the Secret`)
      }
    }
  }
})

t.test('workers get one GPU each', async t => {
  const workers = Object.entries(compose.services).filter(([, s]) => s.image === 'autoresearch-grid/worker')
  t.ok(workers.length >= 1)
  const ids = workers.map(([name, s]) => {
    const devices = s.deploy?.resources?.reservations?.devices ?? []
    t.equal(devices.length, 1, `compose ${name} reserves one device entry`)
    t.same(devices[0]?.capabilities, ['gpu'])
    t.equal(devices[0]?.device_ids?.length, 1, `${name}: exactly one GPU`)
    return devices[0]?.device_ids?.[0]
  })
  t.equal(new Set(ids).size, ids.length, 'a different GPU for each')
  t.equal(k8s('StatefulSet')[0].doc.spec.template!.spec.containers[0].resources?.limits?.['nvidia.com/gpu'], 1, 'each k8s worker pod requests nvidia.com/gpu: 1')
  const sbatch = read('deploy/slurm/worker.sbatch')
  t.match(sbatch, /^#SBATCH --array=\d+-\d+$/m, 'SLURM: an array job')
  t.match(sbatch, /^#SBATCH --gres=gpu:1$/m, 'one GPU per array task')
  t.match(unit('deploy/systemd/autoresearch-grid-worker@.service').get('ExecStart')[0], /--gpus %i\b/, 'systemd: the instance is the GPU')
})

// `npm start`: the whole system on one machine. Installs what is missing, creates a demo campaign
// on the embedded corpus (cpu-tiny on CPU, the 5-minute gpu profile on CUDA), starts the
// coordinator on a SQLite file under ./.autoresearch-grid/ and one local worker with the heuristic
// researcher, prints the dashboard URL and runs until Ctrl-C.
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { bootstrap, root, sandboxUsable } from './bootstrap.mjs'

const { python } = bootstrap()
const data = join(root, '.autoresearch-grid')
const port = process.env.PORT ?? '8377'
const coordinatorCli = join(root, 'coordinator', 'bin', 'coordinator.mjs')
const workerCli = join(root, 'worker', 'bin', 'worker.mjs')
mkdirSync(data, { recursive: true })

function cli(args) {
  const r = spawnSync(process.execPath, [coordinatorCli, '--data', data, ...args], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' })
  if (r.status !== 0) {
    console.error(`coordinator ${args.join(' ')} failed`)
    process.exit(1)
  }
  return r.stdout.trim()
}

const cuda = spawnSync(python, ['-c', 'import torch; print(torch.cuda.is_available())'], { encoding: 'utf8' }).stdout.trim() === 'True'
if (!cli(['campaign', 'list']).split('\n').some(l => l.startsWith('demo\t'))) {
  // One local worker: it may verify its own candidates, and two baselines make a parent mean.
  const ratchet = ['--replications', '1', '--baseline-runs', '2', '--allow-self-verification']
  const spec = [...(cuda ? ['--profile', 'gpu', '--budget', '300'] : ['--profile', 'cpu-tiny', '--budget', '30']), ...ratchet]
  console.log(`creating the demo campaign (${cuda ? 'CUDA: gpu profile, 300 s' : 'no GPU: cpu-tiny profile, 30 s'} per experiment); preparing the embedded corpus...`)
  console.log(cli(['campaign', 'create', 'demo', ...spec]))
}
const tokenFile = join(data, 'local-worker.token')
if (!existsSync(tokenFile)) writeFileSync(tokenFile, cli(['token', 'create', 'local']) + '\n', { mode: 0o600 })
const token = readFileSync(tokenFile, 'utf8').trim()

const children = []
function start(name, args, env = {}) {
  const child = spawn(process.execPath, args, { cwd: root, stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, AUTORESEARCH_PYTHON: python, ...env } })
  child.stdout.setEncoding('utf8')
  child.stdout.on('data', text => { for (const line of text.split('\n').filter(Boolean)) console.log(`[${name}] ${line}`) })
  child.on('exit', code => {
    if (!stopping) {
      console.error(`${name} exited (${code}); stopping`)
      stop()
    }
  })
  children.push(child)
  return child
}

let stopping = false
function stop() {
  if (stopping) return
  stopping = true
  for (const c of children) c.kill('SIGTERM')
  setTimeout(() => process.exit(0), 5000).unref()
  Promise.all(children.map(c => new Promise(r => (c.exitCode !== null ? r() : c.on('exit', r))))).then(() => process.exit(0))
}
process.on('SIGINT', stop)
process.on('SIGTERM', stop)

const coordinator = start('coordinator', [coordinatorCli, '--data', data, 'start', '--port', port])
const url = await new Promise(resolve => {
  coordinator.stdout.on('data', text => {
    const m = /listening on (\S+)/.exec(text)
    if (m) resolve(m[1])
  })
})
// The token travels in the environment, not on a command line other users can read with `ps`.
// Without a sandbox here (bubblewrap missing, no user namespaces) the demo still runs: the only
// code it trains is this checkout's and its own local researcher's, on a coordinator on loopback.
const unsafe = sandboxUsable() ? [] : ['--unsafe-no-sandbox']
if (unsafe.length) console.error('[setup] no usable bubblewrap sandbox here: the demo worker runs its own code unsandboxed. A worker that joins anyone else\'s coordinator needs it: `worker doctor` says how to enable it.')
start('worker', [workerCli, 'join', url, '--name', 'local', '--state', join(data, 'workers', 'local'), ...unsafe], { AUTORESEARCH_TOKEN: token })
console.log(`\n  dashboard: ${url}/\n  Ctrl-C stops everything; state is kept in ${data}\n`)

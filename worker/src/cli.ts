import { Command, Option } from 'commander'
import { hostname, homedir } from 'node:os'
import { join, resolve } from 'node:path'
import { defaultTrainerDir, findPython } from '@autoresearch-grid/trainer'
import type { Profile } from '@autoresearch-grid/shared'
import { DataPreparer } from './data/preparer.ts'
import { joinCoordinator } from './loop/join.ts'
import { readToken } from './client/token.ts'
import { RefusedWorkError, UNSAFE_FLAG } from './sandbox/choose.ts'
import { parseGpuList, planLoops } from './loop/gpus.ts'
import { runSolo } from './solo/loop.ts'
import { formatChecks, runDoctor } from './doctor/checks.ts'
import { probeHardware } from './hardware/probe.ts'
import { progressFor } from './ui/progress.ts'
import { printable } from './ui/printable.ts'

const program = new Command('worker').description('autoresearch-grid worker: lend a GPU to a research campaign').showHelpAfterError()

const int = (what: string) => (v: string) => {
  const n = Number(v)
  if (!Number.isInteger(n) || n < 0) throw new Error(`${what} must be a whole number, got "${v}"`)
  return n
}

/** Ctrl-C stops the loops (results stay spooled); a second Ctrl-C exits at once. */
function stopOnSignals(): AbortSignal {
  const stop = new AbortController()
  const quit = () => {
    if (stop.signal.aborted) process.exit(130)
    console.log('\nstopping: the current run is abandoned, undelivered results stay spooled (Ctrl-C again to force)')
    stop.abort('stopped by the user')
  }
  process.on('SIGINT', quit)
  process.on('SIGTERM', quit)
  return stop.signal
}

// Past a file-size limit (ulimit -f) a write then fails with EFBIG, which the spool reports and
// survives (loop/spool.ts), instead of the signal killing the worker.
process.on('SIGXFSZ', () => {})

const safeName = (s: string) => s.replace(/[^A-Za-z0-9_.-]+/g, '_')

/** `--gpus 0,2` → [0, 2]; `all` → every CUDA device torch sees; absent → [] (one loop, devices untouched). */
async function resolveGpus(spec: string | undefined): Promise<number[]> {
  if (!spec) return []
  if (spec !== 'all') return parseGpuList(spec)
  const hw = await probeHardware({ python: (await findPython()).path })
  // Asked for every GPU and given none: a silent CPU loop would hide a missing driver or a CPU-only torch.
  if (!hw.gpus.length) throw new Error(`--gpus all: torch sees no CUDA GPU on this machine (torch ${hw.torch}); check the driver and torch's CUDA build with \`worker doctor\`, or leave out --gpus to run one loop on the CPU`)
  return hw.gpus.map((_, i) => i)
}

/** The options of a loop's trainer and researcher, the same for join and solo but for their help texts. */
function researchOptions(c: Command, help: { agentCmd: string; program: string }): Command {
  return c
    .option('--trainer <dir>', 'the trainer directory (prepare.py, train.py)', defaultTrainerDir())
    .option('--agent-cmd <command>', help.agentCmd)
    .option('--agent-timeout <seconds>', 'time limit for one --agent-cmd run', int('--agent-timeout'), 1800)
    .option('--program <file>', help.program)
}

researchOptions(program.command('join <url>').description('join a coordinator and research until stopped (Ctrl-C)')
  .option('--token-file <file>', 'file holding the worker token (mode 0600); or set AUTORESEARCH_TOKEN')
  .option('--token <token>', 'the worker token itself: visible to other users of this machine in `ps`, prefer --token-file or AUTORESEARCH_TOKEN')
  .option('--name <name>', 'name of this worker, unique per contributor (one loop per GPU adds -gpu<N>)', hostname())
  .option('--gpus <list>', 'GPUs to use, one loop each: "all" or indices like 0,1 (default: one loop)')
  .option('--state <dir>', 'where the worker keeps data, workspaces, runs and undelivered results'), {
  agentCmd: 'an external coding agent to edit train.py, run in the workspace with the prompt file as last argument',
  program: 'research direction for the agent when the campaign has none of its own (default: program.md of the checkout)',
})
  .option('--no-pipeline', 'do not hold a spare unit: prepare each unit only after the previous one trained')
  .option('--no-overlap', 'on a GPU, do not start the next unit before the current one is done (by default it starts beside the current one\'s evaluation, or beside its training when the next is your own researcher\'s edit of the best)')
  .option('--max-depth <n>', 'most units held at once (2-4, default 4): with a slow agent, several proposals are prepared side by side, as many as keep the GPU busy', int('--max-depth'))
  .option(UNSAFE_FLAG, 'run other contributors\' code WITHOUT a sandbox where none can be made: it then runs as your user, with your files, network and keys')
  .option('--seed <n>', 'trainer seed, also mixed into the agent\'s choices', int('--seed'))
  .option('--max-units <n>', 'stop after each GPU loop trained this many units and delivered the results (default: until Ctrl-C)', int('--max-units'))
  .action(async (url: string, o: { token?: string; tokenFile?: string; name: string; gpus?: string; state?: string; trainer: string; agentCmd?: string; agentTimeout: number; program?: string; pipeline: boolean; overlap: boolean; maxDepth?: number; unsafeNoSandbox?: boolean; seed?: number; maxUnits?: number }) => {
    const token = readToken(o)
    const signal = stopOnSignals()
    const stateDir = resolve(o.state ?? join(homedir(), '.autoresearch-grid', 'workers', safeName(o.name)))
    const loops = planLoops(o.name, stateDir, await resolveGpus(o.gpus))
    const progress = progressFor()
    const common = { url, token, trainerDir: resolve(o.trainer), agentCmd: o.agentCmd, agentTimeoutSeconds: o.agentTimeout, programFile: o.program, pipeline: o.pipeline, overlapStartUp: o.overlap ? undefined : false, maxDepth: o.maxDepth, unsafeNoSandbox: o.unsafeNoSandbox, seed: o.seed, maxUnits: o.maxUnits, signal, progress, dataRoot: join(stateDir, 'data'), preparer: new DataPreparer() }
    try {
      await Promise.all(loops.map(l => joinCoordinator({ ...common, ...l })))
    } catch (err) {
      if (!(err instanceof RefusedWorkError)) throw err
      console.error(printable(err.message))
      process.exit(3)
    }
    process.exit(0)
  })

researchOptions(program.command('solo [dir]').description('research alone, no coordinator: a local ratchet on branch autoresearch/<tag> and results.tsv (plain autoresearch)')
  .option('--tag <tag>', 'run name: the branch is autoresearch/<tag> (an existing one is resumed)', new Date().toISOString().slice(0, 10).replace(/-/g, ''))
  .option('--budget <seconds>', 'training budget per experiment (default: 300 on a GPU, 30 on CPU)', int('--budget'))
  .addOption(new Option('--profile <profile>', 'trainer profile (default: gpu with CUDA, else cpu-tiny)').choices(['gpu', 'cpu-tiny']))
  .option('--experiments <n>', 'stop after this many experiments (default: until Ctrl-C)', int('--experiments'))
  .option('--vocab-size <n>', 'BPE vocabulary of the tokenizer prepare.py trains', int('--vocab-size'))
  .option('--min-delta <x>', 'keep only improvements larger than this', Number, 0)
  .option('--gpu <index>', 'the CUDA device to use', int('--gpu'))
  .option('--state <dir>', 'data, workspaces and runs (default: <dir>/.autoresearch-grid)'), {
  agentCmd: 'an external coding agent to edit train.py',
  program: 'research direction for the agent (default: program.md)',
})
  .option('--no-pipeline', 'prepare each experiment only after the previous one trained')
  .option(UNSAFE_FLAG, 'run the trainer without the sandbox even where one can be made')
  .option('--seed <n>', 'trainer seed', int('--seed'))
  .action(async (dir: string | undefined, o: { tag: string; budget?: number; profile?: Profile; experiments?: number; vocabSize?: number; minDelta: number; gpu?: number; state?: string; trainer: string; agentCmd?: string; agentTimeout: number; program?: string; pipeline: boolean; unsafeNoSandbox?: boolean; seed?: number }) => {
    const signal = stopOnSignals()
    const env = o.gpu === undefined ? undefined : { CUDA_VISIBLE_DEVICES: String(o.gpu) }
    const python = await findPython()
    const profile = o.profile ?? ((await probeHardware({ python: python.path, env: { ...process.env, ...env } })).gpus.length ? 'gpu' : 'cpu-tiny')
    const s = await runSolo({
      dir: resolve(dir ?? 'autoresearch'), tag: o.tag, trainerDir: resolve(o.trainer), stateDir: o.state ? resolve(o.state) : undefined,
      budgetSeconds: o.budget ?? (profile === 'gpu' ? 300 : 30), profile, experiments: o.experiments, vocabSize: o.vocabSize, minDelta: o.minDelta,
      agentCmd: o.agentCmd, agentTimeoutSeconds: o.agentTimeout, programFile: o.program, pipeline: o.pipeline, unsafeNoSandbox: o.unsafeNoSandbox, seed: o.seed, env, signal,
    })
    console.log(`${s.experiments} experiments, ${s.kept} kept, best val_bpb ${s.best?.toFixed(6) ?? '-'}, GPU duty cycle ${((s.dutyCycle ?? 0) * 100).toFixed(0)}%`)
    process.exit(0)
  })

program.command('doctor [url]').description('check this machine (python, torch, GPU, disk, isolation) and, given a URL, the coordinator, the token and each campaign\'s data')
  .option('--token <token>', 'worker token (or AUTORESEARCH_TOKEN)', process.env.AUTORESEARCH_TOKEN)
  .option('--name <name>', 'the worker name whose state to check', hostname())
  .option('--state <dir>', 'the worker\'s state folder')
  .option('--trainer <dir>', 'the trainer directory', defaultTrainerDir())
  .action(async (url: string | undefined, o: { token?: string; name: string; state?: string; trainer: string }) => {
    const stateDir = resolve(o.state ?? join(homedir(), '.autoresearch-grid', 'workers', safeName(o.name)))
    const checks = await runDoctor({ url, token: o.token, stateDir, trainerDir: resolve(o.trainer) })
    console.log(formatChecks(checks))
    process.exit(checks.some(c => c.level === 'fail') ? 1 : 0)
  })

try {
  await program.parseAsync()
} catch (err) {
  console.error(`error: ${printable((err as Error).message)}`)
  process.exit(2)
}

import { Command } from 'commander'
import { hostname, homedir } from 'node:os'
import { join, resolve } from 'node:path'
import { defaultTrainerDir } from '@autoresearch-grid/trainer'
import { joinCoordinator } from './loop/join.ts'

const program = new Command('worker').description('autoresearch-grid worker: lend a GPU to a research campaign').showHelpAfterError()

program.command('join <url>').description('join a coordinator and research until stopped (Ctrl-C)')
  .requiredOption('--token <token>', 'worker token from the maintainer (or AUTORESEARCH_TOKEN)', process.env.AUTORESEARCH_TOKEN)
  .option('--name <name>', 'name of this worker, unique per contributor', `${hostname()}`)
  .option('--state <dir>', 'where the worker keeps data, runs and undelivered results')
  .option('--trainer <dir>', 'the trainer directory (prepare.py, train.py)', defaultTrainerDir())
  .option('--seed <n>', 'seed for the heuristic researcher and the trainer', Number)
  .action(async (url: string, o: { token: string; name: string; state?: string; trainer: string; seed?: number }) => {
    const stop = new AbortController()
    const quit = () => {
      if (stop.signal.aborted) process.exit(130)
      console.log('stopping: finishing nothing, keeping undelivered results (Ctrl-C again to force)')
      stop.abort()
    }
    process.on('SIGINT', quit)
    process.on('SIGTERM', quit)
    const stateDir = resolve(o.state ?? join(homedir(), '.autoresearch-grid', 'workers', o.name.replace(/[^A-Za-z0-9_.-]+/g, '_')))
    await joinCoordinator({ url, token: o.token, name: o.name, stateDir, trainerDir: resolve(o.trainer), seed: o.seed, signal: stop.signal })
    process.exit(0)
  })

try {
  await program.parseAsync()
} catch (err) {
  console.error(`error: ${(err as Error).message}`)
  process.exit(2)
}

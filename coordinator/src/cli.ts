import { Command, InvalidArgumentError } from 'commander'
import { readFile, writeFile, chmod } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { describeSource, NoisePolicy, Profile, ReviewMode, parseResultsTsv, resultStatus, toResultsTsv } from '@autoresearch-grid/shared'
import { defaultTrainerDir, findPython, ensurePrepared } from '@autoresearch-grid/trainer'
import { openCoordinator } from './coordinator.ts'
import { buildServer } from './server.ts'
import { createAdminToken, createWorkerToken } from './auth/access.ts'
import { createCampaign, getCampaign, listCampaigns } from './campaigns/campaigns.ts'
import { setCampaignReview } from './review/mode.ts'
import { UserError } from './errors.ts'
import { overview } from './api/dashboard.ts'
import { eq } from 'drizzle-orm'
import type { Metrics } from '@autoresearch-grid/shared'
import { experiments } from './db/schema.ts'
import { addHypothesis, markHypothesis } from './hypotheses/add.ts'
import { resumeLeases } from './units/leases.ts'
import { parseSourceOption } from './campaigns/source-option.ts'
import { programHistory, currentProgram, setProgram } from './campaigns/program.ts'
import { parseTrustProxy, type TrustProxy } from './auth/trust-proxy.ts'
import { reviewAgentFromEnv } from './review/agent.ts'
import { announceReview } from './review/announce.ts'

const defaultData = process.env.AUTORESEARCH_COORDINATOR_DATA ?? '.autoresearch-grid'
/** An option's parser for one of an enum's values: anything else is refused with the choices (and `hint`). */
const oneOf = <T extends string>(choices: { options: readonly T[] }, hint = '') => (v: string): T => {
  const m = choices.options.find(o => o === v)
  if (m === undefined) throw new InvalidArgumentError(`expected one of ${choices.options.join(', ')}${hint}`)
  return m
}
const reviewMode = oneOf(ReviewMode)
const noisePolicy = oneOf(NoisePolicy.shape.policy.removeDefault(), ' (docs/RATCHET.md compares them)')
const int = (v: string) => {
  const n = Number(v)
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('expected a whole number')
  return n
}

/** The admin token is made on first start and kept (readable by its owner only) in the data dir. */
async function adminToken(dataDir: string, app: Parameters<typeof createAdminToken>[0]): Promise<{ token: string; file: string }> {
  const file = join(dataDir, 'admin.token')
  if (existsSync(file)) return { token: (await readFile(file, 'utf8')).trim(), file }
  const token = createAdminToken(app)
  await writeFile(file, token + '\n', { mode: 0o600 })
  await chmod(file, 0o600)
  return { token, file }
}

const program = new Command('coordinator').description('autoresearch-grid coordinator: campaigns, workers, the ratchet and the leaderboard')
  .option('--data <dir>', 'data directory (SQLite file, git store, tokenizers)', defaultData)
  .showHelpAfterError()

program.command('start').description('serve the API (HTTP + WebSocket) and the status page')
  .option('--port <n>', 'port to listen on', int, 8377)
  .option('--host <host>', 'address to listen on', '127.0.0.1')
  .option('--lease-margin <s>', 'seconds a lease lasts beyond the budget', int)
  .option('--event-retention <days>', 'days the audit log keeps leases and hellos (decisions, merges and reviews stay for good); default 7', (v: string) => {
    const n = Number(v)
    if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a whole number of days, 1 or more')
    return n
  })
  .option('--trust-proxy <proxies>', 'behind a reverse proxy: whose X-Forwarded-For names the client (true | a hop count | addresses or subnets, comma-separated)',
    (v: string) => {
      try {
        return parseTrustProxy(v)
      } catch (err) {
        throw new InvalidArgumentError((err as Error).message)
      }
    })
  .action(async (o: { port: number; host: string; leaseMargin?: number; eventRetention?: number; trustProxy?: TrustProxy }) => {
    const dataDir = resolve(program.opts().data)
    // The review agent's key comes from the environment, and only here (context.ts, Settings.reviewAgent).
    const reviewAgent = reviewAgentFromEnv(process.env)
    const app = await openCoordinator(dataDir, {
      reviewAgent, ...(o.leaseMargin !== undefined ? { leaseMarginSeconds: o.leaseMargin } : {}),
      ...(o.eventRetention !== undefined ? { eventRetentionMs: o.eventRetention * 24 * 60 * 60 * 1000 } : {}),
    })
    // Workers kept training while this coordinator was down: their leases get one margin to reconnect.
    const resumed = resumeLeases(app)
    const { file } = await adminToken(dataDir, app)
    const server = await buildServer(app, { logger: { level: process.env.LOG_LEVEL ?? 'warn' }, trustProxy: o.trustProxy })
    let stopping = false
    const stop = async () => {
      if (stopping) return
      stopping = true
      // Everything acknowledged is already on disk; a close that hangs must not keep the process.
      setTimeout(() => { console.error('coordinator: close took over 5 s, exiting anyway'); process.exit(1) }, 5000).unref()
      await server.close()
      app.close()
      process.exit(0)
    }
    // `on`, not `once`: signal-exit (execa's child clean-up, loaded at the first git process) kills
    // the process with the signal again when its own listener is the only one left, which `once`
    // made it while the close was still running: the exit was 143, not 0. Listening before the
    // first line is printed: a SIGTERM sent as soon as "listening" is read found no listener yet
    // and killed the process between two of the lines below (the review warning was lost).
    process.on('SIGINT', stop)
    process.on('SIGTERM', stop)
    const address = await server.listen({ port: o.port, host: o.host })
    console.log(`coordinator listening on ${address} (data: ${dataDir})`)
    console.log(`status page: ${address}/`)
    console.log(`admin token: ${file}`)
    console.log(reviewAgent ? `review agent: ${reviewAgent.model}${reviewAgent.baseURL ? ` at ${reviewAgent.baseURL}` : ''}` : 'review agent: none (no ANTHROPIC_API_KEY)')
    for (const line of announceReview(app)) console.warn(line)
    if (resumed) console.log(`${resumed} lease(s) held across the restart: their workers have ${app.settings.leaseMarginSeconds} s to reconnect`)
  })

const token = program.command('token').description('worker and admin tokens')
token.command('create <contributor>').description('create a worker token for a contributor (printed once; only its hash is kept)')
  .option('--email <email>', "the contributor's email, used as git author")
  .action(async (name: string, o: { email?: string }) => {
    const app = await openCoordinator(resolve(program.opts().data))
    const { token } = createWorkerToken(app, name, o.email)
    app.close()
    console.log(token)
  })
token.command('admin').description('print the admin token (created on first use)').action(async () => {
  const dataDir = resolve(program.opts().data)
  const app = await openCoordinator(dataDir)
  console.log((await adminToken(dataDir, app)).token)
  app.close()
})

const campaign = program.command('campaign').description('research campaigns')
campaign.command('create <name>').description('create a campaign seeded from trainer/train.py, with a pinned tokenizer and data fingerprint')
  .option('--budget <s>', 'training budget per experiment, seconds', int, 300)
  .option('--profile <p>', 'trainer profile: gpu | cpu-tiny', 'gpu')
  .option('--train-py <file>', 'starting train.py (default: the trainer that ships here)')
  .option('--source <source>', 'data: embedded | climbmix | dir:PATH (a folder only this coordinator has: it prepares it once and serves the result to workers)', 'embedded')
  .option('--num-shards <n>', 'climbmix training shards every worker downloads (default 10)', int)
  .option('--program <file>', "the campaign's program.md (default: the repository's program.md)")
  .option('--author <name>', 'who wrote the program.md, for its history', 'maintainer')
  .option('--vocab-size <n>', 'tokenizer vocabulary size', int)
  .option('--tokenizer <file>', 'use this tokenizer instead of training one')
  .option('--no-prepare', 'do not run prepare.py here: no pinned fingerprint (workers are not checked)')
  .option('--replications <n>', 'under --policy fixed: verification runs by other contributors before a merge (default 3; 0 only with --policy fixed)', int)
  .option('--baseline-runs <n>', 'baseline runs of each best per hardware class (default 4)', int)
  .option('--allow-self-verification', 'let a contributor verify its own candidates (for a single contributor per class)')
  .option('--min-delta <x>', 'smallest improvement worth keeping (default 0.001)', Number)
  .option('--prior-sigma <x>', 'σ of val_bpb assumed until measured (default 0.01)', Number)
  .option('--review <mode>', 'who reviews a candidate\'s diff before it merges: agent | maintainer | agent+maintainer | none', reviewMode, 'agent')
  .option('--policy <policy>', 'how the ratchet reaches a verdict: fixed | sequential | pooled | parallel (default parallel; fixed is the older rule: a screen, --replications verifications, a verdict)', noisePolicy)
  .action(async (name: string, o: { budget: number; profile: string; trainPy?: string; source: string; numShards?: number; program?: string; author: string; vocabSize?: number; tokenizer?: string; prepare: boolean;
    replications?: number; baselineRuns?: number; allowSelfVerification?: boolean; minDelta?: number; priorSigma?: number; review: ReviewMode; policy?: NoisePolicy['policy'] }) => {
    const profile = Profile.safeParse(o.profile)
    if (!profile.success) throw new UserError(`--profile must be gpu or cpu-tiny, not "${o.profile}"`)
    const source = parseSourceOption(o.source, o.numShards)
    if (source.data.kind === 'served' && !o.prepare) throw new UserError('--source dir:PATH needs preparing here (the coordinator serves the prepared data): leave out --no-prepare')
    // Under the sequential policies other contributors' runs decide, whatever --replications
    // says: a campaign asking for none waited for ever on verifiers it never meant to have.
    if (o.replications === 0 && (o.policy ?? 'parallel') !== 'fixed')
      throw new UserError(`--replications 0 (each candidate decided on its author's run) exists under --policy fixed only; under --policy ${o.policy ?? 'parallel'} ` +
        'the sequential test asks other contributors for runs until it is decisive. Add --policy fixed, or, for a campaign with one contributor, use --allow-self-verification instead')
    const dataDir = resolve(program.opts().data)
    const trainPy = o.trainPy ?? join(defaultTrainerDir(), 'train.py')
    const programText = await readProgramFile(o.program)
    let fingerprint: string | null = null
    let tokenizerFile = o.tokenizer
    let served: { source: string; dir: string } | undefined
    if (o.prepare) {
      const python = await findPython()
      const prepared = await ensurePrepared({
        python: python.path, trainerDir: defaultTrainerDir(), cacheDir: join(dataDir, 'prepare-cache'), profile: profile.data,
        tokenizerFile: o.tokenizer, source: source.prepareSource, numShards: source.numShards, vocabSize: o.vocabSize,
        onLine: line => { if (/^(download|training|tokenizing|prepared)/.test(line)) console.log(line) },
      })
      fingerprint = prepared.fingerprint
      tokenizerFile = prepared.tokenizerPath
      if (source.data.kind === 'served') served = { source: source.prepareSource, dir: prepared.dataDir }
    }
    const app = await openCoordinator(dataDir)
    try {
      const c = await createCampaign(app, {
        name, seed: { 'train.py': await readFile(trainPy, 'utf8') }, tokenizerFile, served,
        program: programText === null ? undefined : { text: programText, author: { name: o.author, email: `${o.author.replace(/[^A-Za-z0-9._-]+/g, '-') || 'maintainer'}@autoresearch-grid.local` } },
        spec: { budgetSeconds: o.budget, profile: profile.data, fingerprint, data: source.data, review: o.review, ...(o.vocabSize ? { vocabSize: o.vocabSize } : {}),
          noise: Object.fromEntries(Object.entries({ replications: o.replications, baselineRuns: o.baselineRuns, allowSelfVerification: o.allowSelfVerification,
            minDelta: o.minDelta, priorSigma: o.priorSigma, policy: o.policy }).filter(([, v]) => v !== undefined)) },
      })
      console.log(`campaign ${c.name} created on branch ${c.branch} at ${c.bestCommit.slice(0, 10)}; data: ${describeSource(c.spec.data)}${fingerprint ? ` (fingerprint ${fingerprint.slice(0, 12)}…)` : ''}` +
        `${served ? `; workers download it from /data/${c.name}` : ''}${programText === null ? '; no program.md (workers use their own)' : ''}`)
      console.log(`ratchet policy: ${c.spec.noise.policy ?? 'fixed'}`)
      console.log(`review before merge: ${o.review}${o.review.includes('agent') ? ' (the agent needs ANTHROPIC_API_KEY where `coordinator start` runs)' : ''}`)
    } finally {
      app.close()
    }
  })
campaign.command('review <name> <mode>').description('change who reviews candidates before they merge: agent | maintainer | agent+maintainer | none')
  .action(async (name: string, mode: string) => {
    const review = reviewMode(mode)
    const app = await openCoordinator(resolve(program.opts().data), { reviewAgent: reviewAgentFromEnv(process.env) })
    try {
      const eff = setCampaignReview(app, name, review)
      console.log(`campaign ${name}: review ${review}`)
      if (eff.warning) console.warn(`warning: ${eff.warning} (where this runs; \`coordinator start\` decides with its own environment)`)
    } finally {
      app.close()
    }
  })
campaign.command('list').description('list campaigns with their best').action(async () => {
  const app = await openCoordinator(resolve(program.opts().data))
  for (const c of listCampaigns(app)) {
    const o = overview(app, c.name)!
    console.log(`${c.name}\t${c.status}\t${c.spec.profile}\t${c.spec.budgetSeconds}s\tbest ${o.bestValBpb?.toFixed(6) ?? '-'}\t${o.merges} merges\treview ${o.review.requested}\tpolicy ${c.spec.noise.policy ?? 'fixed'}\tdata: ${describeSource(c.spec.data)}`)
  }
  app.close()
})

/** The campaign's first program.md: the file given, else the repository's; null when there is none. */
async function readProgramFile(file?: string): Promise<string | null> {
  const path = file ?? join(defaultTrainerDir(), '..', 'program.md')
  if (!file && !existsSync(path)) return null
  try {
    return await readFile(path, 'utf8')
  } catch (err) {
    throw new UserError(`cannot read the program file ${path}: ${(err as Error).message}`)
  }
}

const programCmd = program.command('program').description("a campaign's program.md: the research direction every agent receives")
programCmd.command('set <campaign> <file>').description('make FILE the program.md of a campaign; units handed out from now on carry it (also while the coordinator runs)')
  .option('--author <name>', 'who wrote it, for its history', 'maintainer')
  .option('-m, --message <text>', 'what changed, for its history', 'program.md updated')
  .action(async (name: string, file: string, o: { author: string; message: string }) => {
    const text = await readProgramFile(file)
    const app = await openCoordinator(resolve(program.opts().data))
    try {
      const p = await setProgram(app, name, text!, { name: o.author, email: `${o.author.replace(/[^A-Za-z0-9._-]+/g, '-') || 'maintainer'}@autoresearch-grid.local` }, o.message)
      console.log(`program.md of ${name} is now version ${p.version.slice(0, 10)}`)
    } finally {
      app.close()
    }
  })
programCmd.command('show <campaign>').description('print the current program.md of a campaign').action(async (name: string) => {
  const app = await openCoordinator(resolve(program.opts().data))
  try {
    if (!getCampaign(app, name)) throw new UserError(`no campaign "${name}"`, 'not-found')
    const p = await currentProgram(app, name)
    if (!p) throw new UserError(`campaign "${name}" has no program.md: set one with \`coordinator program set ${name} FILE\``)
    process.stdout.write(p.text.endsWith('\n') ? p.text : `${p.text}\n`)
  } finally {
    app.close()
  }
})
programCmd.command('log <campaign>').description('the history of a campaign\'s program.md: version, time, author, message').action(async (name: string) => {
  const app = await openCoordinator(resolve(program.opts().data))
  try {
    for (const v of await programHistory(app, name)) console.log(`${v.version.slice(0, 10)}\t${new Date(v.date).toISOString()}\t${v.author}\t${v.message}`)
  } finally {
    app.close()
  }
})

program.command('hypothesis').description('research ideas').command('add <campaign> <text>').description('queue an idea for workers to try')
  .option('--priority <n>', 'higher goes first', Number, 0)
  .option('--body <text>', 'longer explanation', '')
  .action(async (name: string, text: string, o: { priority: number; body: string }) => {
    const app = await openCoordinator(resolve(program.opts().data))
    try {
      const r = addHypothesis(app, name, { title: text, body: o.body, priority: o.priority, source: 'maintainer', author: 'maintainer' })
      console.log(r.duplicateOf ? `${r.id} (duplicate of ${r.duplicateOf})` : r.id)
    } finally {
      app.close()
    }
  })

program.command('export <campaign>').description('print the experiments of a campaign')
  .requiredOption('--tsv', 'in the results.tsv format of autoresearch')
  .action(async (name: string) => {
    const app = await openCoordinator(resolve(program.opts().data))
    try {
      if (!getCampaign(app, name)) throw new UserError(`no campaign "${name}"`, 'not-found')
      const rows = app.db.select().from(experiments).where(eq(experiments.campaign, name)).orderBy(experiments.createdAt).all()
        .flatMap(e => {
          const status = resultStatus(e.status)
          const m = e.metrics as Metrics | null
          return status ? [{ commit: e.commit, valBpb: e.valBpb, memoryGb: (m?.peak_vram_mb ?? 0) / 1024, status, description: e.description }] : []
        })
      process.stdout.write(toResultsTsv(rows))
    } finally {
      app.close()
    }
  })

program.command('import <campaign>').description('start a campaign from a solo autoresearch run: its train.py, and its results.tsv as ideas already tried')
  .requiredOption('--tsv <file>', 'the results.tsv of the run')
  .requiredOption('--train-py <file>', 'the best train.py of the run')
  .option('--budget <s>', 'training budget per experiment, seconds', int, 300)
  .option('--profile <p>', 'trainer profile: gpu | cpu-tiny', 'gpu')
  .action(async (name: string, o: { tsv: string; trainPy: string; budget: number; profile: string }) => {
    const rows = parseResultsTsv(await readFile(o.tsv, 'utf8'))
    const profile = Profile.safeParse(o.profile)
    if (!profile.success) throw new UserError(`--profile must be gpu or cpu-tiny, not "${o.profile}"`)
    const app = await openCoordinator(resolve(program.opts().data))
    try {
      await createCampaign(app, { name, seed: { 'train.py': await readFile(o.trainPy, 'utf8') }, spec: { budgetSeconds: o.budget, profile: profile.data } })
      let n = 0
      for (const r of rows.filter(r => r.description)) {
        const h = addHypothesis(app, name, { title: r.description.slice(0, 200), source: 'system', author: 'import', priority: -1 })
        markHypothesis(app, h.id, r.status === 'keep' ? 'merged' : 'rejected')
        n++
      }
      console.log(`campaign ${name} created from ${o.trainPy}; ${n} ideas from ${o.tsv} recorded as already tried (no fingerprint pinned: run campaign create to pin one)`)
    } finally {
      app.close()
    }
  })

try {
  await program.parseAsync()
} catch (err) {
  if (err instanceof UserError || (err as Error).name === 'PythonNotFoundError' || (err as Error).name === 'PrepareError') {
    console.error(`error: ${(err as Error).message}`)
    process.exit(2)
  }
  throw err
}

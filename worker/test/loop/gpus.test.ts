import t from 'tap'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { execa } from 'execa'
import { findPython } from '@autoresearch-grid/trainer'
import { createCampaign } from '@autoresearch-grid/coordinator'
import { startCoordinator } from '../../../coordinator/test/helpers.ts'
import { experiments, workers } from '../../../coordinator/src/db/schema.ts'
import { CORPUS_CAMPAIGN, CORPUS_VOCAB, linkCorpus, trainerDir } from '../fixtures/corpus.ts'
import { parseGpuList, planLoops } from '../../src/loop/gpus.ts'
import { workerCli } from '../../../shared/test/support/cli.ts'

t.test('--gpus 0,1 plans one worker per GPU, each with its device and state', async t => {
  t.same(planLoops('box', '/s', parseGpuList('0, 1,1')), [
    { name: 'box-gpu0', stateDir: '/s/gpu0', env: { CUDA_VISIBLE_DEVICES: '0' }, lane: 'gpu0' },
    { name: 'box-gpu1', stateDir: '/s/gpu1', env: { CUDA_VISIBLE_DEVICES: '1' }, lane: 'gpu1' },
  ])
})

t.test('without --gpus (or with none found) there is one loop under the plain name', async t => {
  t.same(planLoops('box', '/s', []), [{ name: 'box', stateDir: '/s', lane: '' }])
})

t.test('a malformed list says what to type', async t => {
  t.throws(() => parseGpuList('first'), /--gpus takes "all" or device indices like 0,1/)
  t.throws(() => parseGpuList('-1'))
})

const TRAIN = readFileSync(join(trainerDir, 'train.py'), 'utf8')

// The real CLI as separate processes, the real trainer on CPU: what `--gpus` does end to end.

t.test('--gpus all on a machine without a CUDA GPU is refused with what to do', { skip: existsSync('/dev/nvidia0') ? 'this machine has a GPU: nothing to refuse' : false }, async t => {
  const r = await execa(process.execPath, [workerCli, 'join', 'http://127.0.0.1:9', '--token', 'arg_wrk_x', '--gpus', 'all', '--state', t.testdir({})], { reject: false, all: true })
  t.equal(r.exitCode, 2, r.all)
  t.match(r.all, /--gpus all: torch sees no CUDA GPU on this machine .*worker doctor.*or leave out --gpus to run one loop on the CPU/)
  t.notMatch(r.all, /connected to/, 'refused before connecting')
})

t.test('--gpus 0,1 runs two workers, each training with its own CUDA_VISIBLE_DEVICES', async t => {
  const c = await startCoordinator()
  t.teardown(c.close)
  // The seed prints the device list the trainer was given, just before its summary block.
  const seed = TRAIN.replace(/^( *)print\("---"\)$/m, '$1print(f"CUDA_VISIBLE_DEVICES={os.environ.get(\'CUDA_VISIBLE_DEVICES\')}")\n$1print("---")')
  t.not(seed, TRAIN, 'the seed prints the device list')
  await createCampaign(c.app, { name: CORPUS_CAMPAIGN, seed: { 'train.py': seed }, spec: { budgetSeconds: 2, profile: 'cpu-tiny', vocabSize: CORPUS_VOCAB, noise: { policy: 'fixed', baselineRuns: 1, replications: 0 } } })
  const state = t.testdir({})
  await linkCorpus(join(state, 'data', CORPUS_CAMPAIGN)) // data is shared by the loops of one machine
  const r = await execa(process.execPath, [workerCli, 'join', c.url, '--token', c.workerToken(), '--name', 'box', '--gpus', '0,1', '--state', state, '--max-units', '1', '--no-pipeline'],
    { reject: false, all: true, env: { AUTORESEARCH_PYTHON: (await findPython()).path } })
  t.equal(r.exitCode, 0, r.all)

  const ws = c.app.db.select().from(workers).all()
  t.same(ws.map(w => w.name).sort(), ['box-gpu0', 'box-gpu1'], 'one worker per GPU')
  t.equal(new Set(ws.map(w => w.id)).size, 2, 'with distinct identities')
  const runs = c.app.db.select().from(experiments).all()
  for (const [i, w] of ws.sort((a, b) => a.name.localeCompare(b.name)).entries()) {
    const mine = runs.filter(e => e.workerId === w.id)
    t.equal(mine.length, 1, `${w.name} trained one unit`)
    t.match(mine[0]?.logTail, new RegExp(`^CUDA_VISIBLE_DEVICES=${i}$`, 'm'), `${w.name}'s trainer saw device ${i} only`)
  }
})

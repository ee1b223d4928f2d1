import t from 'tap'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { simpleGit } from 'simple-git'
import type { AssignmentEvent, WorkUnit } from '@autoresearch-grid/shared'
import { openCoordinator } from '../../src/coordinator.ts'
import { createCampaign } from '../../src/campaigns/campaigns.ts'
import { createWorkerToken } from '../../src/auth/access.ts'
import { CoordinatorProcess, readDb } from '../faults/coordinator-process.ts'
import { CPU, httpClient, report, SEED_TRAIN_PY, wsClient } from '../helpers.ts'
import { HONEST } from './setup.ts'

// A review outlives the coordinator: a candidate awaiting review is still waiting after a
// restart, and an approval recorded just before a crash is carried out when it starts again.

t.test('a crash between the approval and the merge: the restarted coordinator merges with the recorded approval', async t => {
  const dir = await mkdtemp(join(tmpdir(), 'arg-review-recovery-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const data = join(dir, 'data')
  const setup = await openCoordinator(data)
  await createCampaign(setup, { name: 'demo', seed: { 'train.py': SEED_TRAIN_PY },
    spec: { budgetSeconds: 10, profile: 'cpu-tiny', noise: { policy: 'fixed', replications: 0, baselineRuns: 1 }, review: 'maintainer' } })
  const token = createWorkerToken(setup, 'alice', 'alice@example.org').token
  setup.close()

  const coord = new CoordinatorProcess(data)
  t.teardown(() => coord.stop())
  coord.env = { AUTORESEARCH_TEST_CRASH_AT: 'review-approved' }
  await coord.start()
  const w = wsClient(coord.url, token)
  const { workerId } = await w.api.worker.hello.mutate({ name: 'gpu0', hardware: CPU, fingerprints: {}, version: 't' })
  const units: WorkUnit[] = []
  let wake: (() => void) | null = null
  const sub = w.api.worker.assignments.subscribe({ workerId }, { onData: (e: AssignmentEvent) => { if (e.type === 'unit') { units.push(e.unit); wake?.() } } })
  const next = async () => {
    while (!units.length) await new Promise<void>(r => { wake = r })
    return units.shift()!
  }
  await w.api.worker.report.mutate({ workerId, report: report(await next(), 1.5) })
  const r = await w.api.worker.report.mutate({ workerId, report: report(await next(), 1.4, HONEST) })
  t.match(r.decision, /^awaiting review/)
  sub.unsubscribe()
  w.close()

  const admin = httpClient(coord.url, (await readFile(join(data, 'admin.token'), 'utf8')).trim())
  const proc = coord.proc!
  const exited = new Promise<NodeJS.Signals | null>(resolve => proc.once('exit', (_code, signal) => resolve(signal)))
  const answer = await admin.admin.review.mutate({ experimentId: r.experimentId, verdict: 'approve', reason: 'fair: depth only' }).then(() => 'answered', (err: Error) => err.message)
  t.equal(await exited, 'SIGKILL', `the coordinator died after recording the approval (the call got: ${answer})`)
  t.same(readDb(data, db => db.prepare('select status from experiments where id = ?').get(r.experimentId)), { status: 'merging' }, 'approved, not merged yet')
  t.same(readDb(data, db => db.prepare('select count(*) as n from merges').get()), { n: 0 })

  coord.env = {}
  await coord.start()
  t.same(readDb(data, db => db.prepare('select status from experiments where id = ?').get(r.experimentId)), { status: 'kept' })
  t.same(readDb(data, db => db.prepare('select reviewer, review_reason as reason from merges').all()), [{ reviewer: 'maintainer (maintainer)', reason: 'fair: depth only' }])
  const git = simpleGit(join(data, 'git'))
  t.equal(await git.raw(['show', 'autoresearch/demo:train.py']), HONEST)
  t.match(await git.raw(['log', '-1', '--format=%B', 'autoresearch/demo']), 'reviewed-by: maintainer (maintainer)\nreview-reason: fair: depth only')
})

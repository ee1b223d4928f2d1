import t from 'tap'
import { simpleGit } from 'simple-git'
import { join } from 'node:path'
import { writeFile } from 'node:fs/promises'
import type { AssignmentEvent, WorkUnit } from '@autoresearch-grid/shared'
import { CPU, joinWorkers, report, startCoordinator, wsClient, SEED_TRAIN_PY } from '../helpers.ts'
import { sourceHash } from '../../src/units/report.ts'

t.test('a worker gets a baseline first, then explores, and only an improvement moves the branch', async t => {
  const c = await startCoordinator()
  t.teardown(c.close)
  await c.campaign()
  const [{ api, workerId, next, close }] = await joinWorkers(c, ['alice'])
  t.teardown(close)

  const baseline = await next()
  t.equal(baseline.kind, 'baseline')
  t.same(baseline.source, { 'train.py': SEED_TRAIN_PY })
  t.match((await api.worker.report.mutate({ workerId, report: report(baseline, 1.5) })).decision, /measured 1.5/)

  const worse = await next()
  t.equal(worse.kind, 'explore')
  t.match((await api.worker.report.mutate({ workerId, report: report(worse, 1.6, 'DEPTH = 5\n') })).decision, /^discarded/)

  const better = await next()
  const r = await api.worker.report.mutate({ workerId, report: report(better, 1.4, 'DEPTH = 6\n') })
  t.match(r.decision, /^merged/)

  const git = simpleGit(join(c.dir, 'git'))
  const log = await git.raw(['log', '--format=%an <%ae>|%s', 'autoresearch/demo'])
  t.match(log.split('\n')[0], /^alice <alice@example.org>\|an edit/)
  t.equal(log.trim().split('\n').length, 2, 'seed + the kept experiment, nothing else')
  t.equal(await git.raw(['show', 'autoresearch/demo:train.py']), 'DEPTH = 6\n')
  await c.app.git.flushRefs() // experiment refs are written in batches, within ~50 ms (git/ref-batch.ts)
  const refs = await git.raw(['for-each-ref', '--format=%(refname)', 'refs/experiments'])
  t.equal(refs.trim().split('\n').length, 2, 'every explored candidate has a ref, kept or not')
})

t.test('an exploration that changed nothing is on record, never a candidate: noise alone could merge it', async t => {
  const c = await startCoordinator()
  t.teardown(c.close)
  await c.campaign()
  const [{ api, workerId, next, close }] = await joinWorkers(c, ['alice'])
  t.teardown(close)
  const seed = (await api.dashboard.campaign.query({ name: 'demo' }))!.bestCommit
  await api.worker.report.mutate({ workerId, report: report(await next(), 1.5) })

  const same = await next()
  t.equal(same.kind, 'explore')
  const r = await api.worker.report.mutate({ workerId, report: report(same, 1.45) })
  t.match(r.decision, /^discarded: no change: train\.py is identical to its parent/, r.decision)
  const exp = (await api.dashboard.experiment.query({ id: r.experimentId }))!
  t.equal(exp.status, 'discarded')
  t.equal(exp.commit, seed, 'no new commit: the run is of its parent')
  t.equal((exp.metrics as { val_bpb?: number } | null)?.val_bpb, 1.45, "the worker's number stays on record, in its metrics")
  t.equal(exp.valBpb, null, 'not as a candidate\'s val_bpb, which would count it as a decided candidate (hostile/unchanged-rate.test.ts)')
  const rows = c.app.db.$client.prepare('select kind from measurements where "commit" = ?').all(seed) as { kind: string }[]
  t.same(rows.map(x => x.kind), ['baseline'], 'and it is not evidence about the parent either')
  t.same((await api.dashboard.campaign.query({ name: 'demo' }))!.bestCommit, seed, 'the best stays')
  const known = await api.worker.known.query({ workerId, campaign: 'demo', sourceHash: sourceHash({ 'train.py': SEED_TRAIN_PY }) })
  t.equal(known?.status, 'measured', 'the source is known by its baseline')

  // The worker's agent changed nothing: the worker does not train it and reports no metrics.
  const untrained = await next()
  const u = await api.worker.report.mutate({ workerId, report: { ...report(untrained, null), status: 'ok', description: 'no change' } })
  t.match(u.decision, /^discarded: no change/, 'not trained is no crash either')
  t.equal((await api.dashboard.experiment.query({ id: u.experimentId }))!.valBpb, null)
  // A number that fails the sanity checks is not kept with it.
  const insane = await api.worker.report.mutate({ workerId, report: report(await next(), -3) })
  t.match(insane.decision, /^discarded: no change/)
  t.equal((await api.dashboard.experiment.query({ id: insane.experimentId }))!.valBpb, null, 'no val_bpb of -3 on record')
})

t.test('a repeated report returns the first answer and records nothing twice', async t => {
  const c = await startCoordinator()
  t.teardown(c.close)
  await c.campaign()
  const [{ api, workerId, next, close }] = await joinWorkers(c, ['alice'])
  t.teardown(close)
  const unit = await next()
  const first = await api.worker.report.mutate({ workerId, report: report(unit, 1.5) })
  const again = await api.worker.report.mutate({ workerId, report: report(unit, 1.5) })
  t.equal(again.experimentId, first.experimentId)
  t.equal(again.duplicate, true)
  const rows = c.app.db.$client.prepare('select count(*) as n from measurements').get() as { n: number }
  t.equal(rows.n, 1)
})

t.test('a candidate that arrives before its baseline is decided when the baseline lands', async t => {
  const c = await startCoordinator()
  t.teardown(c.close)
  await c.campaign()
  const workers = await joinWorkers(c, ['alice', 'bob'])
  t.teardown(() => workers.forEach(w => w.close()))
  // The two join at once: whichever feed leases first gets the baseline, the other an exploration.
  const units = await Promise.all(workers.map(w => w.next()))
  const first = units.findIndex(u => u.kind === 'baseline')
  t.not(first, -1, 'one of them measures the baseline')
  const [a, b] = first === 0 ? workers : [workers[1], workers[0]]
  const [baseline, explore] = first === 0 ? units : [units[1], units[0]]
  const [wa, wb] = [a.workerId, b.workerId]
  t.equal(explore.kind, 'explore', 'the class already has a baseline in flight')
  t.match((await b.api.worker.report.mutate({ workerId: wb, report: report(explore, 1.4, 'DEPTH = 3\n') })).decision, /^waiting for a baseline/)
  await a.api.worker.report.mutate({ workerId: wa, report: report(baseline, 1.5) })
  const exp = await a.api.dashboard.experiment.query({ id: (await a.api.dashboard.experiments.query({ campaign: 'demo' })).find(e => e.kind === 'explore')!.id })
  t.equal(exp?.status, 'kept')
})

t.test('everything survives a coordinator restart', async t => {
  const c = await startCoordinator()
  await c.campaign()
  const token = c.workerToken()
  const w = wsClient(c.url, token)
  const { workerId } = await w.api.worker.hello.mutate({ name: 'gpu0', hardware: CPU, fingerprints: {}, version: 't' })
  const unit = await new Promise<WorkUnit>(resolve => {
    const sub = w.api.worker.assignments.subscribe({ workerId }, { onData: (e: AssignmentEvent) => { if (e.type === 'unit') { sub.unsubscribe(); resolve(e.unit) } } })
  })
  await w.api.worker.report.mutate({ workerId, report: report(unit, 1.5) })
  w.close()
  await c.stop()
  const again = await startCoordinator({}, c.dir)
  t.teardown(again.close)
  const w2 = wsClient(again.url, token)
  t.teardown(w2.close)
  const list = await w2.api.dashboard.experiments.query({ campaign: 'demo' })
  t.equal(list.length, 1)
  t.equal(list[0].valBpb, 1.5)
  const hello = await w2.api.worker.hello.mutate({ name: 'gpu0', hardware: CPU, fingerprints: {}, version: 't' })
  t.equal(hello.workerId, workerId, 'the same worker keeps its identity')
})

t.test('git clone of /git/<campaign> serves the branch of accepted bests with their authors', async t => {
  const c = await startCoordinator()
  t.teardown(c.close)
  await c.campaign()
  const [{ api, workerId, next, close }] = await joinWorkers(c, ['alice'])
  t.teardown(close)
  await api.worker.report.mutate({ workerId, report: report(await next(), 1.5) })
  await api.worker.report.mutate({ workerId, report: report(await next(), 1.4, 'DEPTH = 7\n') })
  const target = join(c.dir, 'clone')
  await simpleGit().clone(`${c.url}/git/demo`, target)
  const clone = simpleGit(target)
  t.equal((await clone.raw(['log', '--format=%an', 'HEAD'])).trim(), 'alice\nautoresearch-grid')
  t.equal(await clone.raw(['show', 'HEAD:train.py']), 'DEPTH = 7\n')
  await writeFile(join(target, 'train.py'), 'DEPTH = 99\n')
  await clone.raw(['-c', 'user.name=mallory', '-c', 'user.email=m@example.org', 'commit', '-qam', 'sneaky'])
  await t.rejects(async () => { await clone.push('origin', 'HEAD:refs/heads/autoresearch/demo') }, 'pushing is not possible')
  t.equal((await simpleGit(join(c.dir, 'git')).raw(['show', 'autoresearch/demo:train.py'])), 'DEPTH = 7\n', 'the branch is unchanged')
})

t.test('a worker can ask whether an identical train.py was already trained on its class', async t => {
  const c = await startCoordinator()
  t.teardown(c.close)
  await c.campaign()
  const [{ api, workerId, next, close }] = await joinWorkers(c, ['alice'])
  t.teardown(close)
  await api.worker.report.mutate({ workerId, report: report(await next(), 1.5) })
  const r = await api.worker.report.mutate({ workerId, report: report(await next(), 1.6, 'DEPTH = 9\n') })
  const hash = sourceHash({ 'train.py': 'DEPTH = 9\n' })
  t.match(await api.worker.known.query({ workerId, campaign: 'demo', sourceHash: hash }), { experimentId: r.experimentId, valBpb: 1.6 })
  t.equal(await api.worker.known.query({ workerId, campaign: 'demo', sourceHash: sourceHash({ 'train.py': 'DEPTH = 10\n' }) }), null)
})

import t from 'tap'
import { simpleGit } from 'simple-git'
import { join } from 'node:path'
import { joinWorkers, report, SEED_TRAIN_PY, startCoordinator } from '../helpers.ts'

const edit = (from: string, to: string) => SEED_TRAIN_PY.replace(from, to)

t.test('a promising candidate is merged only after other workers reproduce it, with the evidence in the commit', async t => {
  const c = await startCoordinator()
  t.teardown(c.close)
  await c.campaign('demo', { replications: 2, baselineRuns: 2, priorSigma: 0.01 })
  const [a, b, d] = await joinWorkers(c, ['ann', 'ben', 'dee'])
  t.teardown(() => [a, b, d].forEach(w => w.close()))
  const [ua, ub, ud] = [await a.next(), await b.next(), await d.next()]
  t.same([ua.kind, ub.kind, ud.kind], ['baseline', 'baseline', 'explore'], 'two baselines of the best first')
  await a.api.worker.report.mutate({ workerId: a.workerId, report: report(ua, 1.500) })
  await b.api.worker.report.mutate({ workerId: b.workerId, report: report(ub, 1.502) })
  const [candidate, ub2] = [await a.next(), await b.next()]
  t.equal(candidate.kind, 'explore')
  const claim = await a.api.worker.report.mutate({ workerId: a.workerId, report: report(candidate, 1.45, edit('DEPTH = 4', 'DEPTH = 6')) })
  t.match(claim.decision, /^verify/, 'one run is a claim, not a result')
  // ben and dee finish what they hold (no improvement), then verify ann's claim.
  await b.api.worker.report.mutate({ workerId: b.workerId, report: report(ub2, 1.51, edit('MATRIX_LR = 0.02', 'MATRIX_LR = 0.01')) })
  await d.api.worker.report.mutate({ workerId: d.workerId, report: report(ud, 1.51, edit('MATRIX_LR = 0.02', 'MATRIX_LR = 0.04')) })
  const [vb, vd] = [await b.next(), await d.next()]
  t.same([vb.kind, vd.kind], ['verify', 'verify'], 'the other workers verify it')
  t.equal(vb.source['train.py'], edit('DEPTH = 4', 'DEPTH = 6'), 'verification runs the candidate itself')
  await b.api.worker.report.mutate({ workerId: b.workerId, report: report(vb, 1.452) })
  await d.api.worker.report.mutate({ workerId: d.workerId, report: report(vd, 1.448) })
  const exp = await a.api.dashboard.experiment.query({ id: claim.experimentId })
  t.equal(exp?.status, 'kept')
  const git = simpleGit(join(c.dir, 'git'))
  const message = await git.raw(['log', '-1', '--format=%an%n%B', 'autoresearch/demo'])
  t.match(message, /^ann\n/, 'authored by the contributor whose idea it is')
  t.match(message, /val_bpb: 1\.45\d+\ndelta: -0\.0\d+\nsigma: 0\.\d+\nn: 3 \(parent 2\)\nverifiers: (ben, dee|dee, ben)/)
})

t.test('a claim the other workers cannot reproduce is discarded and the branch does not move', async t => {
  const c = await startCoordinator()
  t.teardown(c.close)
  await c.campaign('demo', { replications: 1, baselineRuns: 1, priorSigma: 0.01 })
  const [a, b] = await joinWorkers(c, ['ann', 'ben'])
  t.teardown(() => [a, b].forEach(w => w.close()))
  const ub = await b.next()
  await a.api.worker.report.mutate({ workerId: a.workerId, report: report(await a.next(), 1.5) })
  const claim = await a.api.worker.report.mutate({ workerId: a.workerId, report: report(await a.next(), 1.40, edit('DEPTH = 4', 'DEPTH = 5')) })
  await b.api.worker.report.mutate({ workerId: b.workerId, report: report(ub, 1.52, edit('MATRIX_LR = 0.02', 'MATRIX_LR = 0.01')) })
  const v = await b.next()
  t.equal(v.kind, 'verify')
  await b.api.worker.report.mutate({ workerId: b.workerId, report: report(v, 1.51) })
  t.equal((await a.api.dashboard.experiment.query({ id: claim.experimentId }))?.status, 'discarded')
  t.equal((await simpleGit(join(c.dir, 'git')).raw(['rev-list', '--count', 'autoresearch/demo'])).trim(), '1', 'only the seed')
})

t.test('two workers improving the same parent are both merged: the second through a three-way merge and a verification', async t => {
  const c = await startCoordinator()
  t.teardown(c.close)
  await c.campaign('demo', { replications: 1, baselineRuns: 1, priorSigma: 0.01 })
  const [a, b] = await joinWorkers(c, ['ann', 'ben'])
  t.teardown(() => [a, b].forEach(w => w.close()))
  await a.api.worker.report.mutate({ workerId: a.workerId, report: report(await a.next(), 1.50) })
  const [ua, ub] = [await a.next(), await b.next()]
  t.same([ua.kind, ub.kind], ['explore', 'explore'])
  t.equal(ua.parentCommit, ub.parentCommit)
  await a.api.worker.report.mutate({ workerId: a.workerId, report: report(ua, 1.45, edit('DEPTH = 4', 'DEPTH = 6')) })
  const late = await b.api.worker.report.mutate({ workerId: b.workerId, report: report(ub, 1.44, edit('MATRIX_LR = 0.02', 'MATRIX_LR = 0.03')) })
  t.match(late.decision, /^verify/, "ben's claim waits for verification too")
  const [ua2, vb] = [await a.next(), await b.next()]
  t.same([ua2.kind, vb.kind], ['explore', 'verify'], 'nobody verifies their own claim')
  await b.api.worker.report.mutate({ workerId: b.workerId, report: report(vb, 1.45) }) // ann's claim holds: the best moves
  await a.api.worker.report.mutate({ workerId: a.workerId, report: report(ua2, 1.52, edit('DEPTH = 4', 'DEPTH = 3')) })
  const va = await a.next()
  t.equal(va.kind, 'verify')
  const verified = await a.api.worker.report.mutate({ workerId: a.workerId, report: report(va, 1.44) })
  t.match(verified.decision, /^measured/)
  t.match((await a.api.dashboard.experiment.query({ id: late.experimentId }))?.decision, /^stale/, "ben's parent is no longer the best")
  const v2 = await a.next()
  t.equal(v2.kind, 'verify', 'the merged code is verified by a worker other than its author')
  t.equal(v2.source['train.py'], edit('DEPTH = 4', 'DEPTH = 6').replace('MATRIX_LR = 0.02', 'MATRIX_LR = 0.03'), 'both changes, merged')
  await a.api.worker.report.mutate({ workerId: a.workerId, report: report(v2, 1.40) })
  const git = simpleGit(join(c.dir, 'git'))
  t.equal(await git.raw(['show', 'autoresearch/demo:train.py']), v2.source['train.py'])
  t.equal((await git.raw(['log', '--first-parent', '--format=%an', 'autoresearch/demo'])).trim(), 'ben\nann\nautoresearch-grid')
})

t.test('a stale change that conflicts with the new best becomes a rebase unit with the diff as reference', async t => {
  const c = await startCoordinator()
  t.teardown(c.close)
  await c.campaign('demo', { replications: 0, baselineRuns: 1, priorSigma: 0.01 })
  const [a, b] = await joinWorkers(c, ['ann', 'ben'])
  t.teardown(() => [a, b].forEach(w => w.close()))
  await a.api.worker.report.mutate({ workerId: a.workerId, report: report(await a.next(), 1.50) })
  const [ua, ub] = [await a.next(), await b.next()]
  await a.api.worker.report.mutate({ workerId: a.workerId, report: report(ua, 1.45, edit('DEPTH = 4', 'DEPTH = 6')) })
  await b.api.worker.report.mutate({ workerId: b.workerId, report: report(ub, 1.44, edit('DEPTH = 4', 'DEPTH = 8')) })
  const rebase = await b.next()
  t.equal(rebase.kind, 'rebase')
  t.match(rebase.hypothesis?.title, /^re-apply: /)
  t.match(rebase.referenceDiff, /\+DEPTH = 8/)
  t.equal(rebase.source['train.py'], edit('DEPTH = 4', 'DEPTH = 6'), 'it starts from the new best')
})

t.test('a late report for an expired lease still counts when nobody took the unit since', async t => {
  const c = await startCoordinator({ leaseMarginSeconds: -9, pollMs: 100 }) // 10 s budget − 9 s: a 1-second lease
  t.teardown(c.close)
  await c.campaign()
  const [a] = await joinWorkers(c, ['ann'])
  t.teardown(() => a.close())
  const first = await a.next()
  a.stopFeed() // ann goes quiet, and nobody else is there to take the unit
  await new Promise(r => setTimeout(r, 1500))
  const late = await a.api.worker.report.mutate({ workerId: a.workerId, report: report(first, 1.5) })
  t.match(late.decision, /^measured/)
})

t.test('an expired lease goes to the next idle worker, and the old lease can no longer report', async t => {
  const c = await startCoordinator({ leaseMarginSeconds: -9, pollMs: 100 })
  t.teardown(c.close)
  await c.campaign()
  const [a] = await joinWorkers(c, ['ann'])
  const first = await a.next()
  a.stopFeed()
  await new Promise(r => setTimeout(r, 1500))
  const [b] = await joinWorkers(c, ['ben'])
  t.teardown(() => [a, b].forEach(w => w.close()))
  const taken = await b.next()
  t.equal(taken.id, first.id, 'the expired unit went to the next worker')
  t.not(taken.leaseToken, first.leaseToken)
  await t.rejects(a.api.worker.report.mutate({ workerId: a.workerId, report: report(first, 1.5) }), /re-assigned/)
})

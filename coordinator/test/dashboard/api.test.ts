import t from 'tap'
import WebSocket from 'ws'
import { simpleGit } from 'simple-git'
import { join } from 'node:path'
import { httpClient, SEED_TRAIN_PY, startCoordinator } from '../helpers.ts'
import { explore, join as joinWorker, seedScenario, TRAINING_SECONDS } from './scripted.ts'

/** One seeded coordinator for the tests that only read; the ones that change it start their own. */
let shared: Promise<{ c: Awaited<ReturnType<typeof startCoordinator>>; s: Awaited<ReturnType<typeof seedScenario>> }> | null = null
function seeded() {
  shared ??= (async () => {
    const c = await startCoordinator()
    const s = await seedScenario(c)
    t.teardown(async () => { s.close(); await c.close() })
    return { c, s }
  })()
  return shared
}

t.test('the leaderboard ranks contributors by merges, with the Δ they took off and their GPU-hours', async t => {
  const { c, s } = await seeded()
  t.match(s.first.decision, /^(kept|merged)/)
  t.match(s.second.decision, /^(kept|merged)/)
  const board = await httpClient(c.url, null).dashboard.leaderboard.query({ campaign: 'demo' })
  t.same(board.map(r => r.contributor), ['alice', 'bob'])
  t.equal(board[0].merges, 2)
  t.ok(Math.abs(board[0].deltaValBpb - 0.2) < 1e-9, `alice took 0.2 off (got ${board[0].deltaValBpb})`)
  t.equal(board[0].experiments, 2)
  t.equal(board[1].merges, 0)
  t.equal(board[1].deltaValBpb, 0)
  t.equal(board[1].experiments, 1)
  t.ok(Math.abs(board[0].gpuHours - (s.alice.runs * TRAINING_SECONDS) / 3600) < 1e-9, 'GPU-hours: the training time of valid runs')
  t.ok(Math.abs(board[1].gpuHours - (s.bob.runs * TRAINING_SECONDS) / 3600) < 1e-9)
})

t.test('the curve has every measured run as a point and a running best that steps down at each merge', async t => {
  const { c, s } = await seeded()
  const [cls, ...others] = await httpClient(c.url, null).dashboard.curve.query({ campaign: 'demo' })
  t.equal(others.length, 0, 'one hardware class')
  t.equal(cls.hardwareClass, 'cpu-x86_64')
  t.equal(cls.points.length, s.alice.runs + s.bob.runs)
  t.same(cls.points.filter(p => p.group === 'kept').map(p => p.valBpb), [1.4, 1.3])
  t.same(cls.points.filter(p => p.group === 'tried').map(p => p.valBpb), [1.45])
  t.same([...new Set(cls.best.map(b => b.valBpb))], [1.5, 1.4, 1.3], 'seed baseline, then each merge')
  t.equal(cls.noise.source, 'prior', 'no commit measured three times yet: the campaign prior')
  t.equal(cls.noise.sigma, 0.01)
})

t.test('the summary shows the best, σ, the pace and the workers online', async t => {
  const { c } = await seeded()
  const sum = (await httpClient(c.url, null).dashboard.summary.query({ campaign: 'demo' }))!
  t.equal(sum.bestValBpb, 1.3)
  t.equal(sum.merges, 2)
  t.equal(sum.experimentsLastHour, sum.experiments)
  t.equal(sum.workersOnline, 2)
  t.equal(sum.noise[0].sigma, 0.01)
})

t.test('the experiment list filters by status, kind, worker and text', async t => {
  const { c, s } = await seeded()
  const api = httpClient(c.url, null)
  const list = (f: object) => api.dashboard.experiments.query({ campaign: 'demo', ...f })
  t.same((await list({ status: 'discarded' })).map(e => e.description), ['much deeper: 9 layers'])
  t.same((await list({ kind: 'explore', workerId: s.alice.workerId })).map(e => e.description), ['deeper still: 6 layers', 'deeper: 5 layers'])
  t.same((await list({ text: 'still' })).map(e => e.description), ['deeper still: 6 layers'])
  t.same((await list({ text: 'bob 9 layers' })).map(e => e.description), ['much deeper: 9 layers'], 'every word must match somewhere')
  t.same(await list({ text: '%' }), [], 'LIKE wildcards are matched literally')
})

t.test('an experiment\'s detail has the diff from git and the samples behind its decision', async t => {
  const { c, s } = await seeded()
  const d = (await httpClient(c.url, null).dashboard.experimentDetail.query({ id: s.second.experimentId }))!
  t.match(d.diff, /-DEPTH = 5\n\+DEPTH = 6/)
  t.same(d.samples.measured.map(m => m.valBpb), [1.3])
  t.ok(d.samples.parent.length >= 1 && d.samples.parent.every(m => m.valBpb === 1.4), 'the parent measured 1.4')
  t.equal(d.merge?.valAfter, 1.3)
  t.equal(d.contributor, 'alice')
})

t.test('reverting a merge adds a commit that restores the code from before it, and needs the admin token', async t => {
  const c = await startCoordinator()
  t.teardown(c.close)
  const s = await seedScenario(c)
  t.teardown(s.close)
  const git = simpleGit(join(c.dir, 'git'))
  const tipBefore = (await git.raw(['rev-parse', 'autoresearch/demo'])).trim()
  const merges = await httpClient(c.url, null).dashboard.merges.query({ campaign: 'demo' })
  t.equal(merges.length, 2)
  const latest = merges[0]
  await t.rejects(httpClient(c.url, c.workerToken('mallory')).admin.revertMerge.mutate({ mergeId: latest.id }), /admin token is required/)
  await t.rejects(httpClient(c.url, null).admin.revertMerge.mutate({ mergeId: latest.id }), /admin token is required/)

  const heard: unknown[] = []
  const off = c.app.bus.onEvent(e => { if (e.type === 'best-changed') heard.push(e) })
  const admin = httpClient(c.url, c.adminToken())
  const r = await admin.admin.revertMerge.mutate({ mergeId: latest.id })
  off()
  t.same(r.reverted, [latest.id])
  t.equal((await git.raw(['rev-parse', 'autoresearch/demo'])).trim(), r.commit)
  t.equal((await git.raw(['rev-parse', `${r.commit}^`])).trim(), tipBefore, 'a new commit on top: history is not rewritten')
  t.equal(await git.raw(['show', 'autoresearch/demo:train.py']), 'DEPTH = 5\n')
  t.match(await git.raw(['log', '-1', '--format=%an %s', 'autoresearch/demo']), /^maintainer revert: deeper still/)
  t.equal((await admin.dashboard.campaign.query({ name: 'demo' }))?.bestCommit, r.commit)
  t.equal((await admin.dashboard.summary.query({ campaign: 'demo' }))?.bestValBpb, 1.4, 'the restored code keeps its measurements')
  t.same(heard, [{ type: 'best-changed', campaign: 'demo', commit: r.commit, valBpb: 1.4 }])
  const after = await admin.dashboard.merges.query({ campaign: 'demo' })
  t.same(after.map(m => m.reverted), [true, false])
  const logged = c.app.db.$client.prepare("select payload from events where type = 'merge-reverted'").all() as { payload: string }[]
  t.equal(logged.length, 1)
  await t.rejects(admin.admin.revertMerge.mutate({ mergeId: latest.id }), /already reverted/)
  t.equal((await admin.dashboard.leaderboard.query({ campaign: 'demo' }))[0].merges, 1, 'a reverted merge no longer counts')

  // The first merge is still on the branch (through the revert commit): reverting it goes back to the seed.
  const again = await admin.admin.revertMerge.mutate({ mergeId: merges[1].id })
  t.equal(await git.raw(['show', 'autoresearch/demo:train.py']), SEED_TRAIN_PY)
  t.equal((await git.raw(['rev-parse', `${again.commit}^`])).trim(), r.commit)
})

t.test('reverting an older merge also reverts the merges made on top of it', async t => {
  const c = await startCoordinator()
  t.teardown(c.close)
  const s = await seedScenario(c)
  t.teardown(s.close)
  const admin = httpClient(c.url, c.adminToken())
  const [second, first] = await admin.dashboard.merges.query({ campaign: 'demo' })
  const r = await admin.admin.revertMerge.mutate({ mergeId: first.id })
  t.same(r.reverted, [second.id, first.id])
  t.equal(await simpleGit(join(c.dir, 'git')).raw(['show', 'autoresearch/demo:train.py']), SEED_TRAIN_PY)
  t.same((await admin.dashboard.leaderboard.query({ campaign: 'demo' }))[0].merges, 0)
})

t.test('the maintainer reorders and drops hypotheses; nobody else can', async t => {
  const c = await startCoordinator()
  t.teardown(c.close)
  await c.campaign()
  const admin = httpClient(c.url, c.adminToken())
  const { id } = await admin.admin.addHypothesis.mutate({ campaign: 'demo', title: 'try a longer warmdown' })
  await t.rejects(httpClient(c.url, null).admin.updateHypothesis.mutate({ id, priority: 9 }), /admin token is required/)
  await admin.admin.updateHypothesis.mutate({ id, priority: 9 })
  t.equal((await admin.dashboard.hypotheses.query({ campaign: 'demo' }))[0].priority, 9)
  await admin.admin.updateHypothesis.mutate({ id, status: 'rejected' })
  t.equal((await admin.dashboard.hypotheses.query({ campaign: 'demo' }))[0].status, 'rejected')
  t.same(await admin.dashboard.whoami.query(), { admin: true })
  t.same(await httpClient(c.url, null).dashboard.whoami.query(), { admin: false })
})

t.test('the live subscription speaks tRPC\'s WebSocket messages and says when an experiment lands', async t => {
  const c = await startCoordinator()
  t.teardown(c.close)
  await c.campaign()
  // Exactly what web/trpc.js sends and expects, without a tRPC client library.
  const ws = new WebSocket(c.url.replace(/^http/, 'ws') + '/trpc')
  t.teardown(() => ws.close())
  const messages: { id?: number; result?: { type: string; data?: { type: string; campaign: string } } }[] = []
  let wake: () => void = () => {}
  ws.on('message', raw => { messages.push(JSON.parse(String(raw))); wake() })
  const until = async (ok: () => boolean) => { while (!ok()) await new Promise<void>(r => { wake = r }) }
  await new Promise(r => ws.once('open', r))
  ws.send(JSON.stringify({ id: 1, method: 'subscription', params: { path: 'dashboard.live', input: { campaign: 'demo' } } }))
  await until(() => messages.some(m => m.result?.type === 'started'))
  const w = await joinWorker(c, 'alice', 'gpu0')
  t.teardown(w.close)
  await explore(w, { source: 'DEPTH = 5\n', valBpb: 1.4, description: 'deeper' })
  await until(() => messages.some(m => m.result?.data?.type === 'experiment'))
  const data = messages.filter(m => m.result?.type === 'data').map(m => m.result!.data!)
  t.ok(data.every(d => d.campaign === 'demo' || d.campaign === null || d.campaign === '*'), 'only this campaign\'s news')
  t.ok(data.some(d => d.type === 'best-changed'))
})

t.test('the page, its modules and uPlot are served from this coordinator under a strict CSP', async t => {
  const c = await startCoordinator()
  t.teardown(c.close)
  const page = await fetch(c.url + '/')
  t.equal(page.status, 200)
  t.match(page.headers.get('content-security-policy'), /script-src 'self'/)
  const html = await page.text()
  t.match(html, /<script type="module" src="\/assets\/app.js">/)
  t.match(html, /<noscript>/, 'a plain summary for readers without JavaScript')
  for (const path of ['/assets/app.js', '/assets/trpc.js', '/assets/chart.js', '/assets/style.css', '/vendor/uplot/uPlot.esm.js', '/vendor/uplot/uPlot.min.css']) {
    const r = await fetch(c.url + path)
    t.equal(r.status, 200, path)
  }
  t.not((await fetch(c.url + '/vendor/uplot/uPlot.cjs.js')).status, 200, 'only the files the page uses')
  t.not((await fetch(c.url + '/assets/../package.json')).status, 200)
  t.same(await (await fetch(c.url + '/health')).json(), { ok: true })
  t.match(await (await fetch(c.url + '/status')).text(), /http-equiv="refresh"/)
})

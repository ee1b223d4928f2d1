import t from 'tap'
import { randomBytes } from 'node:crypto'
import { existsSync, readdirSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { simpleGit } from 'simple-git'
import { escapeHtml } from '../../src/status/page.ts'
import { httpClient, joinWorkers, report, SEED_TRAIN_PY, startCoordinator } from '../helpers.ts'

// shared/protocol.ts DisplayName: "anything printable, stored verbatim and rendered escaped, never
// used as a path". Hostile names for contributors, workers, hypotheses and descriptions.
const mark = randomBytes(4).toString('hex')
const HOSTILE = [
  `../../etc/passwd-${mark}`,
  `'; DROP TABLE workers;--${mark}`,
  `<script>alert('${mark}')</script>`,
  `"><img src=x onerror=alert('${mark}')>`,
  `..\\..\\win-${mark}`,
  `&lt;b&gt;${mark}&amp;`,
]
const MARKUP = /[<>&"']/

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap(e => [e.name, ...(e.isDirectory() ? walk(join(dir, e.name)) : [])])
}

t.test('hostile names are stored verbatim, rendered escaped, and never become paths', async t => {
  const c = await startCoordinator()
  t.teardown(c.close)
  await c.campaign()
  const admin = httpClient(c.url, c.adminToken())
  // Contributors named through the admin API; workers (one per hostile contributor) name themselves.
  for (const h of HOSTILE) await admin.admin.createToken.mutate({ contributor: `c${h}` })
  const workers = await joinWorkers(c, HOSTILE)
  t.teardown(() => workers.forEach(w => w.close()))
  let first = true
  for (const [i, w] of workers.entries()) {
    let unit = await w.next()
    if (unit.kind === 'baseline') {
      await w.api.worker.report.mutate({ workerId: w.workerId, report: report(unit, 1.5) })
      unit = await w.next()
    }
    const r = { ...report(unit, first ? 1.4 : 1.6, SEED_TRAIN_PY.replace('DEPTH = 4', `DEPTH = ${10 + i}`)), description: `desc ${w.name}`,
      followUps: [{ title: `idea ${w.name}`, body: w.name }] }
    first = false
    const reply = await w.api.worker.report.mutate({ workerId: w.workerId, report: r })
    t.ok(reply.experimentId, `${JSON.stringify(w.name)}'s report is stored`)
    await w.api.worker.propose.mutate({ workerId: w.workerId, campaign: 'demo', hypotheses: [{ title: `proposal ${w.name}`, body: w.name }] })
    await admin.admin.addHypothesis.mutate({ campaign: 'demo', title: `maintainer ${w.name}`, body: w.name })
  }

  const db = c.app.db.$client
  const column = (sql: string) => (db.prepare(sql).all() as { v: string }[]).map(r => r.v)
  const contributors = column('select name as v from contributors')
  const workerNames = column('select name as v from workers')
  const descriptions = column('select description as v from experiments')
  const titles = column('select title as v from hypotheses')
  for (const h of HOSTILE) {
    t.ok(contributors.includes(h) && contributors.includes(`c${h}`), `contributor ${JSON.stringify(h)} stored verbatim`)
    t.ok(workerNames.includes(h), `worker ${JSON.stringify(h)} stored verbatim`)
    t.ok(descriptions.includes(`desc ${h}`), 'description stored verbatim')
    t.ok([`idea ${h}`, `proposal ${h}`, `maintainer ${h}`].every(x => titles.includes(x)), 'hypothesis titles stored verbatim')
  }
  t.equal((db.prepare('select count(*) as n from workers').get() as { n: number }).n, HOSTILE.length, 'the workers table is whole')

  const status = await (await fetch(`${c.url}/status`)).text()
  const page = await (await fetch(`${c.url}/`)).text()
  for (const h of HOSTILE.filter(h => MARKUP.test(h))) {
    t.notOk(status.includes(h) || page.includes(h), `${JSON.stringify(h)} never appears raw in / or /status`)
    t.ok(status.includes(escapeHtml(h)) && status.includes(escapeHtml(`desc ${h}`)), 'and appears escaped on /status')
    if (page.includes('<noscript>')) t.ok(page.includes(escapeHtml(h)), 'and escaped in the no-script summary on /')
  }
  t.notOk(/<script>alert|<img src=x/.test(status + page), 'no injected element anywhere')

  const names = walk(c.dir)
  t.same(names.filter(n => n.includes(mark)), [], 'no file or folder under the data dir carries a hostile name')
  for (const h of HOSTILE) t.notOk(existsSync(resolve(c.dir, h)) || existsSync(resolve(c.dir, 'git', h)), `${JSON.stringify(h)} resolved against the data dir does not exist`)
  const refs = await simpleGit(join(c.dir, 'git')).raw(['for-each-ref', '--format=%(refname)'])
  t.notOk(refs.includes(mark), 'no git ref carries a hostile name')
  const authors = await simpleGit(join(c.dir, 'git')).raw(['log', '--format=%an', 'autoresearch/demo'])
  t.match(authors, new RegExp(mark), 'the merge is authored by its (hostile) contributor, as git spells the name')
  t.comment(`RESULT names: hostile-strings=${HOSTILE.length} contributors=${contributors.length} workers=${workerNames.length} hypotheses=${titles.length} ` +
    `raw-in-html=0 files-with-hostile-names=${names.filter(n => n.includes(mark)).length}`)
})

t.test('a contributor whose name git cannot use as an author still gets results stored', async t => {
  const c = await startCoordinator()
  t.teardown(c.close)
  await c.campaign()
  const stored: string[] = []
  for (const name of ['<>', '...']) {
    const [w] = await joinWorkers(c, [name])
    t.teardown(w.close)
    let unit = await w.next()
    if (unit.kind === 'baseline') {
      await w.api.worker.report.mutate({ workerId: w.workerId, report: report(unit, 1.5) })
      unit = await w.next()
    }
    const r = await w.api.worker.report.mutate({ workerId: w.workerId, report: report(unit, 1.6, SEED_TRAIN_PY.replace('DEPTH = 4', `DEPTH = ${name.length + 20}`)) })
      .then(x => x.experimentId, (err: Error) => `refused: ${err.message}`)
    stored.push(r)
  }
  t.same(stored.filter(s => s.startsWith('refused')), [], 'both explorations are stored')
  await c.app.git.flushRefs() // experiment refs are written in batches, within ~50 ms (git/ref-batch.ts)
  const refs = await simpleGit(join(c.dir, 'git')).raw(['for-each-ref', '--format=%(refname) %(authorname)', 'refs/experiments/'])
  t.equal(refs.split('\n').filter(l => l.endsWith(' unnamed contributor')).length, 2, 'their commits carry the fallback author')
  const names = c.app.db.$client.prepare('select name from contributors order by name').all() as { name: string }[]
  t.same(names.map(n => n.name), ['...', '<>'], 'the contributors keep their names verbatim')
})

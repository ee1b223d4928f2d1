import t, { type Test } from 'tap'
import { simpleGit } from 'simple-git'
import { join } from 'node:path'
import { sourceHash } from '@autoresearch-grid/shared'
import { CPU, httpClient, joinWorkers, report, SEED_TRAIN_PY, startCoordinator, wsClient } from '../helpers.ts'

// What one contributor writes, others read: a report's description reaches other workers (their
// agents and their logs: `worker.known`, units' `triedOnParent`, the swarm's search), the git log
// of the campaign's branch and `coordinator export` in the maintainer's terminal; follow-ups and
// proposals reach everyone's queue. Terminal escapes in them would rewrite another volunteer's
// screen (a title, a cleared screen, a hyperlink that lies, an OSC 52 clipboard write); NUL and
// other control characters break the one-line formats they are printed in.

const ESCAPES = '\u001b]0;owned\u0007\u001b[2J\u001b]52;c;Y3VybCBldmlsfHNo\u0007\u009b31m\u0000\u0008\r'
/** Control characters other than tab and newline, C1 included (U+009B is a one-character CSI). */
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/
const ONE_LINE_CONTROL = /[\u0000-\u001f\u007f-\u009f]/

/** A coordinator with campaign "demo", mallory's and ben's workers joined, and the best's first baseline in. */
async function twoContributors(t: Test) {
  const c = await startCoordinator()
  t.teardown(c.close)
  await c.campaign('demo')
  const [mallory, ben] = await joinWorkers(c, ['mallory', 'ben'])
  t.teardown(() => [mallory, ben].forEach(w => w.close()))
  await mallory.api.worker.report.mutate({ workerId: mallory.workerId, report: report(await mallory.next(), 1.5) })
  return { c, mallory, ben }
}

t.test('control characters and terminal escapes in what a contributor writes never reach another contributor or the maintainer', async t => {
  const { c, mallory, ben } = await twoContributors(t)
  const edit = SEED_TRAIN_PY.replace('MATRIX_LR = 0.02', 'MATRIX_LR = 0.03')
  const unit = await mallory.next()
  const reply = await mallory.api.worker.report.mutate({ workerId: mallory.workerId, report: {
    ...report(unit, 1.6, edit),
    description: `lr 0.03 ${ESCAPES} done`,
    agentNotes: `notes\nline two ${ESCAPES}`,
    followUps: [{ title: `try ${ESCAPES} wider`, body: `because\n${ESCAPES}` }],
  } })
  await mallory.api.worker.propose.mutate({ workerId: mallory.workerId, campaign: 'demo', hypotheses: [{ title: `idea ${ESCAPES} x`, body: `body\n${ESCAPES}` }] })

  const known = await ben.api.worker.known.query({ workerId: ben.workerId, campaign: 'demo', sourceHash: sourceHash({ 'train.py': edit }) })
  t.ok(known, 'another contributor finds the run by its source')
  t.notMatch(known!.description, ONE_LINE_CONTROL, `worker.known's description is plain: ${JSON.stringify(known!.description)}`)
  t.match(known!.description, /^lr 0\.03 .*done$/, 'and keeps its words')

  const dashboard = httpClient(c.url, null)
  const e = (await dashboard.dashboard.experiment.query({ id: reply.experimentId }))!
  t.notMatch(e.description, ONE_LINE_CONTROL, 'the dashboard\'s description is plain')
  t.notMatch(e.agentNotes, CONTROL, 'agent notes keep line breaks only')
  t.match(e.agentNotes, /^notes\nline two /, 'and their words and lines')
  const queue = await dashboard.dashboard.hypotheses.query({ campaign: 'demo' })
  t.equal(queue.length, 2, 'the follow-up and the proposal are queued')
  for (const h of queue) {
    t.notMatch(h.title, ONE_LINE_CONTROL, `hypothesis title is plain: ${JSON.stringify(h.title)}`)
    t.notMatch(h.body, CONTROL, 'hypothesis body keeps line breaks only')
  }
  const log = await simpleGit(join(c.dir, 'git')).raw(['log', '--format=%B', `refs/experiments/${reply.experimentId}`]).catch(async () => {
    await new Promise(r => setTimeout(r, 500))
    return simpleGit(join(c.dir, 'git')).raw(['log', '--format=%B', `refs/experiments/${reply.experimentId}`])
  })
  t.notMatch(log, CONTROL, 'the commit message is plain')
})

t.test('a claim\'s description (the swarm\'s in-flight note) reaches the next claimant of the same code plain', async t => {
  const { mallory, ben } = await twoContributors(t)
  const [mu, bu] = [await mallory.next(), await ben.next()]
  t.equal(mu.parentCommit, bu.parentCommit, 'both explore the same parent')
  const hash = sourceHash({ 'train.py': SEED_TRAIN_PY.replace('MATRIX_LR = 0.02', 'MATRIX_LR = 0.04') })
  const claim = { campaign: 'demo', sourceHash: hash, agent: `heuristic${ESCAPES}` }
  const mine = await mallory.api.swarm.claim.mutate({ ...claim, workerId: mallory.workerId, unitId: mu.id, leaseToken: mu.leaseToken, description: `lr 0.04 ${ESCAPES}`, changes: [`MATRIX_LR 0.02 -> 0.04${ESCAPES}`] })
  t.equal(mine.duplicateOf, null, 'mallory claims the edit first')
  const theirs = await ben.api.swarm.claim.mutate({ ...claim, workerId: ben.workerId, unitId: bu.id, leaseToken: bu.leaseToken, description: 'lr 0.04', changes: [] })
  t.ok(theirs.duplicateOf, 'ben is told it is in flight')
  t.notMatch(theirs.duplicateOf!.description, ONE_LINE_CONTROL, `and reads mallory's description plain: ${JSON.stringify(theirs.duplicateOf!.description)}`)
})

// "Trojan Source" (CVE-2021-42574): a right-to-left override in a comment or string shows the
// reviewer of a diff (the maintainer, the review agent, `git log -p`) code in another order than
// Python runs it, e.g. an early `return` that reads as part of a comment. Bidirectional controls in
// text become spaces like the rest, and a source that holds one is refused outright.
const BIDI = '\u202e\u2066\u2069\u202a'

t.test('bidirectional controls: a source holding one is refused, and text holding them is stored plain', async t => {
  const { c, mallory } = await twoContributors(t)
  const unit = await mallory.next()
  const trojan = SEED_TRAIN_PY.replace('MATRIX_LR = 0.02', 'MATRIX_LR = 0.03  # \u202e } \u2066if is_admin:\u2069 \u2066 begin admins only')
  await t.rejects(mallory.api.worker.report.mutate({ workerId: mallory.workerId, report: report(unit, 1.4, trojan) }),
    /train\.py:5: U\+202E is a Unicode bidirectional control: it makes code read differently from how it runs, so no source may hold one \(remove it\)/)
  const experiments = (c.app.db.$client.prepare('select count(*) as n from experiments').get() as { n: number }).n
  t.equal(experiments, 1, 'nothing was recorded but the baseline')
  const reply = await mallory.api.worker.report.mutate({ workerId: mallory.workerId, report: {
    ...report(unit, 1.6, SEED_TRAIN_PY.replace('MATRIX_LR = 0.02', 'MATRIX_LR = 0.05')), description: `lr 0.05 ${BIDI} done`, agentNotes: `a\n${BIDI}b` } })
  const e = (await httpClient(c.url, null).dashboard.experiment.query({ id: reply.experimentId }))!
  t.equal(e.description, 'lr 0.05      done', 'the description\'s controls are spaces')
  t.equal(e.agentNotes, 'a\n    b')
  const named = c.app.db.$client.prepare('select count(*) as n from workers').get() as { n: number }
  const rogue = wsClient(c.url, c.workerToken('rogue'))
  t.teardown(rogue.close)
  await t.rejects(rogue.api.worker.hello.mutate({ name: `gpu\u202e0`, hardware: CPU, fingerprints: {}, version: 't' }), /a name may not contain control characters or bidirectional controls/)
  t.equal((c.app.db.$client.prepare('select count(*) as n from workers').get() as { n: number }).n, named.n, 'and a worker name holding one is refused')
})

t.test('a description with replacement patterns ($` and $\') is shown as written in the page\'s summary, not spliced into it', async t => {
  // The page's no-script summary was put in with String.replace and a string: `$\`` and `$'` in it
  // copied the page before and after the marker into the summary (third round).
  const { c, mallory } = await twoContributors(t)
  const unit = await mallory.next()
  await mallory.api.worker.report.mutate({ workerId: mallory.workerId, report: { ...report(unit, 1.6, SEED_TRAIN_PY.replace('MATRIX_LR = 0.02', 'MATRIX_LR = 0.03')), description: "lr $` and $' here" } })
  const page = await (await fetch(c.url + '/')).text()
  t.equal(page.match(/<!doctype html>/gi)?.length, 1, 'the page is in it once')
  t.match(page, /lr \$` and \$(&#39;|&#x27;|') here/, 'the description as written')
})

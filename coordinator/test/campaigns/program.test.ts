import t from 'tap'
import { simpleGit } from 'simple-git'
import { join } from 'node:path'
import { LIMITS } from '@autoresearch-grid/shared'
import { httpClient, joinWorkers, report, startCoordinator } from '../helpers.ts'
import { createCampaign } from '../../src/campaigns/campaigns.ts'
import { currentProgram, programHistory, setProgram } from '../../src/campaigns/program.ts'

// program.md per campaign (issue 16): kept in the git store with its history, carried by every
// unit with its version, changed by the maintainer while the campaign runs.
const MAJA = { name: 'Maja Maintainer', email: 'maja@example.org' }

t.test('program.md lives in the git store: each version a commit with its author, time and message', async t => {
  let now = Date.UTC(2026, 0, 5, 9, 30)
  const c = await startCoordinator()
  t.teardown(c.close)
  c.app.now = () => now
  await createCampaign(c.app, { name: 'demo', seed: { 'train.py': 'X = 1\n' }, spec: { budgetSeconds: 10, profile: 'cpu-tiny' }, program: { text: '# v1\nstudy learning rates\n', author: MAJA } })
  now += 3600_000
  const v2 = await setProgram(c.app, 'demo', '# v2\nstudy the schedule\n', { name: 'Olli Owner', email: 'olli@example.org' }, 'focus on the schedule')
  t.same(await currentProgram(c.app, 'demo'), v2, 'the latest version is current')
  const history = await programHistory(c.app, 'demo')
  t.same(history.map(h => [h.author, h.message, new Date(h.date).toISOString()]), [
    ['Olli Owner', 'focus on the schedule', '2026-01-05T10:30:00.000Z'],
    ['Maja Maintainer', 'program.md at campaign creation', '2026-01-05T09:30:00.000Z'],
  ])
  const git = simpleGit(join(c.dir, 'git'))
  t.equal(await git.raw(['show', `${v2.version}:program.md`]), '# v2\nstudy the schedule\n', 'a plain git repository holds the text')
  t.equal((await git.raw(['rev-parse', 'refs/programs/demo'])).trim(), v2.version)
  t.same(await setProgram(c.app, 'demo', '# v2\nstudy the schedule\n', MAJA), v2, 'saving the same text again makes no new version')
  await t.rejects(setProgram(c.app, 'demo', '  \n', MAJA), /program.md is empty/)
  await t.rejects(setProgram(c.app, 'demo', 'x'.repeat(LIMITS.programChars + 1), MAJA), /shorten it/)
  await t.rejects(setProgram(c.app, 'nope', 'text', MAJA), /no campaign "nope"/)
})

t.test('every unit carries the program.md current when it was handed out, and names its version', async t => {
  const c = await startCoordinator()
  t.teardown(c.close)
  await c.campaign()
  const [ann] = await joinWorkers(c, ['ann'])
  t.teardown(ann.close)
  const first = await ann.next()
  t.equal(first.program, undefined, 'a campaign without a program.md sends none (the worker uses its own)')
  const v1 = await setProgram(c.app, 'demo', '# v1\n', MAJA)
  await ann.api.worker.report.mutate({ workerId: ann.workerId, report: report(first, 1.5) })
  const second = await ann.next()
  t.same(second.program, { version: v1.version, text: '# v1\n' })
  const admin = httpClient(c.url, c.adminToken())
  await t.rejects(httpClient(c.url, c.workerToken('eve')).admin.setProgram.mutate({ campaign: 'demo', text: '# mine\n' }), /admin/i, 'only the maintainer may change it')
  const v2 = await admin.admin.setProgram.mutate({ campaign: 'demo', text: '# v2 from the dashboard\n', message: 'edited in the dashboard' })
  const underV1 = await ann.api.worker.report.mutate({ workerId: ann.workerId, report: report(second, 1.6) })
  const detail = await httpClient(c.url, null).dashboard.experimentDetail.query({ id: underV1.experimentId })
  t.equal(detail?.unit?.programVersion, v1.version, 'the experiment shows the program version it was made under')
  const third = await ann.next()
  t.same(third.program, { version: v2.version, text: '# v2 from the dashboard\n' }, 'the next unit carries the edit')
  const rows = c.app.db.$client.prepare('select unit_id as unit, program_version as version from unit_context order by created_at').all()
  t.same(rows, [{ unit: first.id, version: null }, { unit: second.id, version: v1.version }, { unit: third.id, version: v2.version }], 'each unit names its version')
  const shown = await httpClient(c.url, null).dashboard.program.query({ campaign: 'demo' })
  t.equal(shown.current?.text, '# v2 from the dashboard\n')
  t.same(shown.history.map(h => h.message), ['edited in the dashboard', 'program.md updated'], 'the dashboard shows the history')
})

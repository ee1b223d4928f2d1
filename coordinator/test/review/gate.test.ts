import t from 'tap'
import { simpleGit } from 'simple-git'
import { join } from 'node:path'
import { eq } from 'drizzle-orm'
import { events, experiments, merges, reviews } from '../../src/db/schema.ts'
import { announceReview } from '../../src/review/announce.ts'
import { createUnit, getUnit, leaseUnit, newLeaseToken } from '../../src/units/lifecycle.ts'
import type { BusEvent } from '../../src/events/bus.ts'
import { httpClient, SEED_TRAIN_PY } from '../helpers.ts'
import { apiError, approve, CHEAT, HONEST, message, MODEL, reject, reviewSetup, toolUse, until, type MessagesRequest } from './setup.ts'

// The review gate (docs/RATCHET.md): a candidate the ratchet accepts merges only after the review
// its campaign asks for. Real coordinator, real git, real workers; the agent is the real SDK
// against a local Messages-API server.

type Setup = Awaited<ReturnType<typeof reviewSetup>>

const experiment = (s: Setup, id: string) => s.c.app.db.select().from(experiments).where(eq(experiments.id, id)).get()!
const reviewOf = (s: Setup, id: string) => s.c.app.db.select().from(reviews).where(eq(reviews.experimentId, id)).get()!
const mergeRows = (s: Setup) => s.c.app.db.select().from(merges).all()
const eventTypes = (s: Setup) => s.c.app.db.select({ type: events.type }).from(events).all().map(e => e.type)
const branch = (s: Setup, ref = 'autoresearch/demo') => simpleGit(join(s.c.dir, 'git')).raw(['show', `${ref}:train.py`])
const headMessage = (s: Setup) => simpleGit(join(s.c.dir, 'git')).raw(['log', '-1', '--format=%B', 'autoresearch/demo'])
const userText = (r: MessagesRequest) => JSON.stringify(r.messages[0].content)

t.test('agent review: an approved candidate merges, with the reviewer and reason in the merge row and the commit trailer', async t => {
  const s = await reviewSetup({ review: 'agent', script: [approve('an honest depth change')] })
  t.teardown(s.close)
  await s.baseline()
  const r = await s.explore(HONEST, 1.4)
  t.match(r.decision, /^awaiting review \(agent\) by the review agent/, 'the ratchet accepts it, the branch waits')

  await until(() => experiment(s, r.experimentId).status === 'kept', 'the merge')
  const [m] = mergeRows(s)
  t.equal(m.reviewer, `${MODEL} (agent)`)
  t.match(m.reviewReason, /an honest depth change/)
  t.equal(await branch(s), HONEST)
  const msg = await headMessage(s)
  t.match(msg, `reviewed-by: ${MODEL} (agent)`)
  t.match(msg, 'review-reason: an honest depth change')
  t.match(experiment(s, r.experimentId).decision, /^merged: .*review approved by claude-review-test \(agent\)/)

  // What the reviewer was given: the rules, the diff, the whole candidate, numbered; one forced tool.
  const [request] = s.api!.requests
  t.equal(request.model, MODEL)
  t.match(request.tool_choice, { type: 'tool', name: 'submit_review' })
  t.match(JSON.stringify(request.system), /prepare.py is LOCKED/)
  t.match(userText(request), /\+DEPTH = 6/)
  t.match(userText(request), /1\| DEPTH = 6/)
  t.same(eventTypes(s).filter(e => e.startsWith('review')), ['review-requested', 'review-approved'])
})

t.test('agent review: a cheating diff is rejected with the reason and who rejected it, and the branch stays', async t => {
  const s = await reviewSetup({ review: 'agent', script: [reject('learning rate set to 0 and a hand-printed summary', [{ line: 9, text: 'prints a fake val_bpb' }])] })
  t.teardown(s.close)
  await s.baseline()
  const r = await s.explore(CHEAT, 1.42)
  await until(() => experiment(s, r.experimentId).status === 'rejected', 'the rejection')
  const e = experiment(s, r.experimentId)
  t.match(e.decision, `rejected by review (agent ${MODEL}): learning rate set to 0 and a hand-printed summary`)
  t.match(e.decision, 'train.py:9: prints a fake val_bpb')
  const review = reviewOf(s, r.experimentId)
  t.equal(review.state, 'rejected')
  t.same(review.agentConcerns, [{ file: 'train.py', line: 9, severity: 'blocking', text: 'prints a fake val_bpb' }])
  t.same(mergeRows(s), [])
  t.equal(await branch(s), SEED_TRAIN_PY)

  const detail = await httpClient(s.c.url, null).dashboard.experimentDetail.query({ id: r.experimentId })
  t.match(detail?.review, { state: 'rejected', agent: { verdict: 'reject', model: MODEL } }, 'the experiment detail shows the review')
  t.ok(eventTypes(s).includes('review-rejected'))
})

t.test('an agent answer that is not a valid submit_review is sent back to the model, and the corrected one counts', async t => {
  const s = await reviewSetup({ review: 'agent', script: [
    message([{ type: 'text', text: 'Looks fine to me.' }], undefined, 'end_turn'),
    message([toolUse('submit_review', { verdict: 'probably', summary: 'fine' })]),
    approve('fair after all'),
  ] })
  t.teardown(s.close)
  await s.baseline()
  const r = await s.explore(HONEST, 1.4)
  await until(() => experiment(s, r.experimentId).status === 'kept', 'the merge')
  t.equal(s.api!.requests.length, 3, 'one review, three turns')
  const last = s.api!.requests[2].messages.at(-1)!
  t.match(last.content, [{ type: 'tool_result', is_error: true, content: /verdict/ }], 'the model was told what was wrong')
  t.equal(reviewOf(s, r.experimentId).agentFailures, 0, 'a corrected answer is not a failure')
})

t.test('agent errors leave the candidate awaiting review, visibly, and nothing merges until the agent answers', async t => {
  let up = false
  const s = await reviewSetup({ review: 'agent', script: async () => (up ? approve() : apiError(500, 'api_error', 'overloaded for the test')) })
  t.teardown(s.close)
  await s.baseline()
  const r = await s.explore(HONEST, 1.4)
  const failing = await until(() => { const v = reviewOf(s, r.experimentId); return v.agentFailures >= 2 && v }, 'two failed reviews')
  t.equal(failing.state, 'pending')
  t.match(failing.agentError, /Anthropic API error 500/)
  t.equal(experiment(s, r.experimentId).status, 'awaiting-review')
  t.same(mergeRows(s), [])
  t.equal(await branch(s), SEED_TRAIN_PY)
  const queue = await httpClient(s.c.url, null).dashboard.reviews.query({ campaign: 'demo' })
  t.match(queue?.pending, [{ experimentId: r.experimentId, agent: { failures: Number, error: /500/ } }], 'the queue shows the failure')
  t.ok(eventTypes(s).includes('review-error'), 'the audit log has it')

  up = true
  await until(() => experiment(s, r.experimentId).status === 'kept', 'the merge once the agent answers')
  t.equal(await branch(s), HONEST)
  t.equal(reviewOf(s, r.experimentId).agentError, null, 'the last error is cleared by the verdict')
})

t.test('maintainer review waits; an approval with its reason merges and is recorded', async t => {
  const s = await reviewSetup({ review: 'maintainer' })
  t.teardown(s.close)
  await s.baseline()
  const r = await s.explore(HONEST, 1.4)
  t.match(r.decision, /^awaiting review \(maintainer\) by the maintainer/)
  const admin = httpClient(s.c.url, s.c.adminToken())
  const queue = await httpClient(s.c.url, null).dashboard.reviews.query({ campaign: 'demo' })
  t.match(queue?.pending, [{ experimentId: r.experimentId, waitingOn: ['maintainer'], evidence: { nC: 1, nP: 1 }, experiment: { diff: /\+DEPTH = 6/ } }])

  await t.rejects(httpClient(s.c.url, null).admin.review.mutate({ experimentId: r.experimentId, verdict: 'approve', reason: 'fine' }), /admin token/)
  await t.rejects(admin.admin.review.mutate({ experimentId: r.experimentId, verdict: 'approve', reason: ' ' }), /reason/)
  t.equal(experiment(s, r.experimentId).status, 'awaiting-review', 'still waiting')
  t.equal(await branch(s), SEED_TRAIN_PY)

  t.match(await admin.admin.review.mutate({ experimentId: r.experimentId, verdict: 'approve', reason: 'read it: only the depth changes' }), { outcome: 'approved', status: 'kept' })
  const [m] = mergeRows(s)
  t.match(m, { reviewer: 'maintainer (maintainer)', reviewReason: 'read it: only the depth changes' })
  t.match(await headMessage(s), 'reviewed-by: maintainer (maintainer)\nreview-reason: read it: only the depth changes')
  t.equal(await branch(s), HONEST)
  await t.rejects(admin.admin.review.mutate({ experimentId: r.experimentId, verdict: 'reject', reason: 'too late' }), /not awaiting review/)
})

t.test('maintainer review: a rejection records the reason and the maintainer', async t => {
  const s = await reviewSetup({ review: 'maintainer' })
  t.teardown(s.close)
  await s.baseline()
  const r = await s.explore(CHEAT, 1.42)
  const admin = httpClient(s.c.url, s.c.adminToken())
  t.match(await admin.admin.review.mutate({ experimentId: r.experimentId, verdict: 'reject', reason: 'prints its own val_bpb' }), { outcome: 'rejected', status: 'rejected' })
  t.equal(experiment(s, r.experimentId).decision, 'rejected by review (maintainer maintainer): prints its own val_bpb')
  t.match(reviewOf(s, r.experimentId), { state: 'rejected', maintainerVerdict: 'reject', maintainerReason: 'prints its own val_bpb' })
  t.same(mergeRows(s), [])
  t.equal(await branch(s), SEED_TRAIN_PY)
})

t.test('a rejection by review stops the candidate\'s verifications still running, and tells their worker', async t => {
  const s = await reviewSetup({ review: 'maintainer' })
  t.teardown(s.close)
  await s.baseline()
  const r = await s.explore(CHEAT, 1.42)
  const exp = experiment(s, r.experimentId)
  // A verification of it that a worker is running (as a further look under the pooled policies asks for one).
  const db = s.c.app.db
  const unit = createUnit(db, { kind: 'verify', campaign: 'demo', hypothesisId: null, parentCommit: exp.parentCommit, targetCommit: exp.commit,
    targetExperiment: exp.id, hardwareClass: exp.hardwareClass }, Date.now())
  leaseUnit(db, unit.id, { workerId: s.alice.workerId, token: newLeaseToken(), expiresAt: Date.now() + 600_000 }, Date.now())
  const heard: BusEvent[] = []
  t.teardown(s.c.app.bus.onEvent(e => { if (e.type === 'unit-cancelled') heard.push(e) }))
  const admin = httpClient(s.c.url, s.c.adminToken())
  t.match(await admin.admin.review.mutate({ experimentId: r.experimentId, verdict: 'reject', reason: 'prints its own val_bpb' }), { outcome: 'rejected' })
  t.equal(getUnit(db, unit.id)?.state, 'cancelled', 'the running verification is cancelled')
  t.match(heard, [{ type: 'unit-cancelled', workerId: s.alice.workerId, unitId: unit.id, reason: /rejected by its review/ }], 'and its worker told')
})

t.test('agent+maintainer: the agent approves first, the merge waits for the maintainer too', async t => {
  const s = await reviewSetup({ review: 'agent+maintainer', script: [approve()] })
  t.teardown(s.close)
  await s.baseline()
  const r = await s.explore(HONEST, 1.4)
  await until(() => reviewOf(s, r.experimentId).agentVerdict === 'approve', 'the agent')
  t.equal(experiment(s, r.experimentId).status, 'awaiting-review')
  t.match(experiment(s, r.experimentId).decision, /by the maintainer;/)
  const admin = httpClient(s.c.url, s.c.adminToken())
  await admin.admin.review.mutate({ experimentId: r.experimentId, verdict: 'approve', reason: 'agreed with the agent' })
  const [m] = mergeRows(s)
  t.equal(m.reviewer, `${MODEL} (agent), maintainer (maintainer)`)
  const msg = await headMessage(s)
  t.match(msg, `reviewed-by: ${MODEL} (agent)`)
  t.match(msg, 'reviewed-by: maintainer (maintainer)\nreview-reason: agreed with the agent')
})

t.test('no API key: an agent review merges with a visible warning; agent+maintainer falls back to the maintainer', async t => {
  const s = await reviewSetup({ review: 'agent' })
  t.teardown(s.close)
  const pub = httpClient(s.c.url, null)
  t.match((await pub.dashboard.summary.query({ campaign: 'demo' }))?.review, { requested: 'agent', mode: 'none', warning: /no ANTHROPIC_API_KEY: candidates merge WITHOUT review/ },
    'the dashboard has the warning for its banner')
  t.match(announceReview(s.c.app), [/^warning: campaign demo: .*WITHOUT review/], 'what `coordinator start` prints')
  t.ok(eventTypes(s).includes('review-fallback'), 'and the audit log has it')

  await s.baseline()
  const r = await s.explore(HONEST, 1.4)
  t.match(r.decision, /^merged: .*merged WITHOUT review/)
  t.match(mergeRows(s), [{ reviewer: 'none', reviewReason: /WITHOUT review/ }])
  t.match(await headMessage(s), /reviewed-by: none \(review: none\)\nreview-warning: .*ANTHROPIC_API_KEY/)
  t.ok(eventTypes(s).includes('review-skipped'))

  const admin = httpClient(s.c.url, s.c.adminToken())
  t.match(await admin.admin.setReview.mutate({ campaign: 'demo', review: 'agent+maintainer' }), { mode: 'maintainer', warning: /only the maintainer/ })
  const next = await s.explore(SEED_TRAIN_PY.replace('DEPTH = 4', 'DEPTH = 8'), 1.3)
  t.match(next.decision, /^awaiting review \(maintainer\) by the maintainer/)
  t.match(reviewOf(s, next.experimentId), { requested: 'agent+maintainer', mode: 'maintainer', warning: /ANTHROPIC_API_KEY/ })
})

t.test('review none merges at once, recorded as unreviewed, with no warning', async t => {
  const s = await reviewSetup({ review: 'none' })
  t.teardown(s.close)
  t.match((await httpClient(s.c.url, null).dashboard.summary.query({ campaign: 'demo' }))?.review, { mode: 'none', warning: null })
  await s.baseline()
  const r = await s.explore(HONEST, 1.4)
  t.match(r.decision, /^merged: /)
  t.notMatch(r.decision, /WITHOUT review/)
  t.match(mergeRows(s), [{ reviewer: 'none', reviewReason: 'review: none' }])
  t.match(await headMessage(s), 'reviewed-by: none (review: none)\nexperiment: ')
  t.notOk(eventTypes(s).includes('review-skipped'))
})

t.test('the best moved while a candidate awaited review: it goes the stale way instead of merging', async t => {
  const s = await reviewSetup({ review: 'maintainer' })
  t.teardown(s.close)
  await s.baseline()
  const first = await s.explore(HONEST, 1.4)
  const second = await s.explore(SEED_TRAIN_PY.replace('MATRIX_LR = 0.02', 'MATRIX_LR = 0.03'), 1.35)
  t.equal(experiment(s, second.experimentId).status, 'awaiting-review')
  const admin = httpClient(s.c.url, s.c.adminToken())
  await admin.admin.review.mutate({ experimentId: first.experimentId, verdict: 'approve', reason: 'fair' })
  await until(() => reviewOf(s, second.experimentId).state === 'superseded', 'the second review superseded')
  const e = experiment(s, second.experimentId)
  t.equal(e.status, 'stale')
  t.match(e.decision, /awaited review/)
  const merged = await until(() => s.c.app.db.select().from(experiments).all().find(x => x.agentNotes === `three-way merge of ${second.experimentId}`), 'the three-way merge')
  t.equal(merged.parentCommit, s.c.app.db.select().from(merges).get()!.bestAfter, 'carried onto the new best, to be verified and reviewed afresh')
  await t.rejects(admin.admin.review.mutate({ experimentId: second.experimentId, verdict: 'approve', reason: 'fair' }), /not awaiting review/)
  t.equal(mergeRows(s).length, 1)
})

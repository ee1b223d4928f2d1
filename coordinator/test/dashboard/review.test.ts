import t from 'tap'
import { eq } from 'drizzle-orm'
import type { Page } from 'playwright-core'
import { open, skip } from './browser.ts'
import { experiments, merges } from '../../src/db/schema.ts'
import { CHEAT, HONEST, MODEL, reject, reviewSetup, until } from '../review/setup.ts'

// The maintainer's side of the review gate in a real browser (Debian's Chromium, as page.test.ts):
// the queue with diff, evidence and the agent's review; approve / reject with a required reason.

async function login(page: Page, token: string) {
  await page.fill('#token-form [name=token]', token)
  await page.locator('#token-form button[type=submit]').click()
  await page.locator('body.admin').waitFor()
}

type Setup = Awaited<ReturnType<typeof reviewSetup>>
const status = (s: Setup, id: string) => s.c.app.db.select().from(experiments).where(eq(experiments.id, id)).get()!.status

t.test('the maintainer approves from the queue: the reason is required, then the candidate merges with it', { skip }, async t => {
  const s = await reviewSetup({ review: 'maintainer' })
  t.teardown(s.close)
  await s.baseline()
  const r = await s.explore(HONEST, 1.4)
  const page = await open(t, s.c.url)
  const item = page.locator(`#review-list [data-review="${r.experimentId}"]`)
  await item.waitFor()
  t.match(await item.textContent(), /waiting for the maintainer/)
  t.match(await item.locator('.review-diff').textContent(), /\+DEPTH = 6/, 'the diff')
  t.match(await item.locator('.kv').textContent(), /Δ−0\.100000/, 'the evidence')
  t.equal(await item.locator('form.verdict-form').isVisible(), false, 'no verdict form without the admin token')
  t.notMatch(await page.locator('#review-list').textContent(), /null|undefined/, 'nothing missing shows as text')

  await login(page, s.c.adminToken())
  await item.locator('button', { hasText: 'Approve and merge' }).click()
  await page.locator('#notice', { hasText: 'A review needs a reason' }).waitFor()
  t.equal(status(s, r.experimentId), 'awaiting-review', 'nothing was sent without a reason')

  await item.locator('textarea[name=reason]').fill('only the depth changes; fair')
  await item.locator('button', { hasText: 'Approve and merge' }).click()
  await page.locator('#notice', { hasText: 'Approved and merged.' }).waitFor()
  t.match(s.c.app.db.select().from(merges).all(), [{ experimentId: r.experimentId, reviewer: 'maintainer (maintainer)', reviewReason: 'only the depth changes; fair' }])
  await page.locator('#review-list tr', { hasText: 'approved' }).waitFor()
  await page.locator('#review-list', { hasText: 'Nothing awaits review.' }).waitFor()
})

t.test('the maintainer rejects from the queue; the experiment detail shows who rejected it and why', { skip }, async t => {
  const s = await reviewSetup({ review: 'maintainer' })
  t.teardown(s.close)
  await s.baseline()
  const r = await s.explore(CHEAT, 1.42)
  const page = await open(t, s.c.url)
  await login(page, s.c.adminToken())
  const item = page.locator(`#review-list [data-review="${r.experimentId}"]`)
  await item.locator('textarea[name=reason]').fill('learning rate 0 and a printed val_bpb')
  await item.locator('button', { hasText: 'Reject' }).click()
  await page.locator('#notice', { hasText: 'Rejected, with your reason on record.' }).waitFor()
  t.equal(status(s, r.experimentId), 'rejected')
  t.same(s.c.app.db.select().from(merges).all(), [])

  await page.locator('#review-list tr', { hasText: 'rejected' }).locator('.clickable').click()
  const detail = page.locator('#detail-body')
  await detail.locator('.review-box').waitFor()
  t.match(await detail.locator('.decision').textContent(), 'rejected by review (maintainer maintainer): learning rate 0 and a printed val_bpb')
  t.match(await detail.locator('.maintainer-review').textContent(), /rejected.*learning rate 0 and a printed val_bpb/s)
})

t.test('the agent\'s rejection, with its line concerns, shows in the experiment detail', { skip }, async t => {
  const s = await reviewSetup({ review: 'agent', script: [reject('a hand-printed summary', [{ line: 9, text: 'prints a fake val_bpb' }])] })
  t.teardown(s.close)
  await s.baseline()
  const r = await s.explore(CHEAT, 1.42)
  await until(() => status(s, r.experimentId) === 'rejected', 'the agent\'s rejection')
  const page = await open(t, `${s.c.url}/#experiment=${r.experimentId}`)
  const box = page.locator('#detail-body .agent-review')
  await box.waitFor()
  t.match(await box.textContent(), new RegExp(`rejected.*${MODEL}.*a hand-printed summary`, 's'))
  t.match(await box.locator('.concerns').textContent(), 'train.py:9 blocking: prints a fake val_bpb')
})

t.test('without an API key an agent-reviewed campaign shows a warning banner', { skip }, async t => {
  const s = await reviewSetup({ review: 'agent' })
  t.teardown(s.close)
  const page = await open(t, s.c.url)
  const banner = page.locator('#review-banner')
  await banner.waitFor()
  t.match(await banner.textContent(), /Campaign demo: .*no ANTHROPIC_API_KEY: candidates merge WITHOUT review/)
  t.match(await page.locator('#review-mode').textContent(), 'review: agent, here none')

  await login(page, s.c.adminToken())
  await page.selectOption('#review-form [name=review]', 'maintainer')
  await page.locator('#review-form button[type=submit]').click()
  await page.locator('#notice', { hasText: 'Review of demo: maintainer.' }).waitFor()
  await page.locator('#review-banner').waitFor({ state: 'hidden' })
})

import t from 'tap'
import type { Page } from 'playwright-core'
import { open, skip } from './browser.ts'
import { httpClient, startCoordinator } from '../helpers.ts'
import { explore, join, seedScenario } from './scripted.ts'

// The dashboard in a real browser: Debian's Chromium, driven by playwright-core.
// scripts/bootstrap.mjs installs the `chromium` package for `npm test` where apt-get is usable.

const cells = (page: Page, row: string) => page.locator(row).locator('td').allTextContents()

t.test('the chart and the leaderboard show the seeded campaign\'s numbers', { skip }, async t => {
  const c = await startCoordinator()
  t.teardown(c.close)
  const s = await seedScenario(c)
  t.teardown(s.close)
  const page = await open(t, c.url)
  await page.locator('#leaderboard-rows tr').nth(1).waitFor()
  t.same((await cells(page, '#leaderboard-rows tr >> nth=0')).slice(0, 5), ['1', 'alice', '2', '0.2000', '2'])
  t.same((await cells(page, '#leaderboard-rows tr >> nth=1')).slice(0, 5), ['2', 'bob', '0', '0', '1'])
  t.equal(await page.locator('#tile-best').textContent(), '1.3000')
  t.equal(await page.locator('#tile-merges').textContent(), '2')
  t.equal(await page.locator('#tile-gpus').textContent(), '2')
  t.equal(await page.locator('#tile-sigma').textContent(), '0.0100')
  const runs = s.alice.runs + s.bob.runs
  t.equal(await page.locator('#chart-caption').textContent(), `${runs} measured experiments on 1 hardware class · running best 1.3000 on cpu-x86_64`)
  t.equal(await page.locator('#chart canvas').count(), 1, 'uPlot drew the chart')
  t.equal(await page.locator('#experiment-rows tr.row-kept').count(), 2)
})

t.test('a result reported by a real worker appears without a reload', { skip }, async t => {
  const c = await startCoordinator()
  t.teardown(c.close)
  const s = await seedScenario(c)
  t.teardown(s.close)
  const page = await open(t, c.url)
  await page.locator('#experiment-rows tr[data-experiment]').first().waitFor()
  await page.evaluate(() => { (window as unknown as { stayed: boolean }).stayed = true })
  await explore(s.bob, { source: 'DEPTH = 4\n', valBpb: 1.2, description: 'back to 4 layers, wider' })
  const reported = Date.now()
  // Pushed, not polled: how soon is reported, not asserted (a loaded machine stretches it).
  await page.locator('#experiment-rows tr', { hasText: 'back to 4 layers, wider' }).waitFor()
  await page.locator('#tile-best', { hasText: '1.2000' }).waitFor()
  t.pass(`shown after ${Date.now() - reported} ms`)
  t.equal(await page.evaluate(() => (window as unknown as { stayed?: boolean }).stayed), true, 'the same page, not a reload')
  t.same((await cells(page, '#leaderboard-rows tr >> nth=1')).slice(1, 3), ['bob', '1'], 'bob now has a merge')
})

t.test('the worker\'s progress bar follows its heartbeats', { skip }, async t => {
  const c = await startCoordinator()
  t.teardown(c.close)
  await c.campaign()
  const w = await join(c, 'alice', 'gpu0')
  t.teardown(w.close)
  const page = await open(t, c.url)
  const { nextUnit } = await import('./scripted.ts')
  const unit = await nextUnit(w)
  const beat = (percent: number) => w.api.worker.heartbeat.mutate({ workerId: w.workerId,
    units: [{ unitId: unit.id, leaseToken: unit.leaseToken, progress: { step: percent, percent, loss: 2.5, remainingSeconds: null } }] })
  const bar = page.locator(`#worker-list [data-worker="${w.workerId}"] .bar`)
  await beat(30)
  await bar.locator('.pct', { hasText: '30%' }).waitFor()
  await beat(75)
  await bar.locator('.pct', { hasText: '75%' }).waitFor()
  t.match(await page.locator(`#worker-list [data-worker="${w.workerId}"]`).textContent(), /gpu0.*alice.*cpu-x86_64.*baseline/s)
})

t.test('maintainer actions are refused without the admin token and work with it', { skip }, async t => {
  const c = await startCoordinator()
  t.teardown(c.close)
  const s = await seedScenario(c)
  t.teardown(s.close)
  const page = await open(t, c.url)
  const status = async () => (await httpClient(c.url, null).dashboard.campaign.query({ name: 'demo' }))?.status

  await page.locator('#campaign-pause').click()
  await page.locator('#notice', { hasText: 'Refused: the admin token is required' }).waitFor()
  t.equal(await status(), 'active', 'no token: nothing changed')
  // isVisible() does not wait: the merge rows may still be rendering (it failed so in a clean clone).
  const revert = page.locator('#merge-rows button', { hasText: 'revert' }).first()
  await revert.waitFor()
  t.equal(await revert.isVisible(), true, 'the revert button is shown without the token too')
  await revert.click()
  await page.locator('#notice', { hasText: 'Refused: the admin token is required' }).waitFor()
  t.same((await httpClient(c.url, null).dashboard.merges.query({ campaign: 'demo' })).map(m => m.reverted), [false, false])

  await page.fill('#token-form [name=token]', c.workerToken('mallory'))
  await page.locator('#token-form button[type=submit]').click()
  await page.locator('#admin-state', { hasText: 'not the admin token' }).waitFor()
  await page.locator('#campaign-pause').click()
  await page.locator('#notice', { hasText: 'Refused' }).waitFor()
  t.equal(await status(), 'active', 'a worker token is not enough')

  await page.fill('#token-form [name=token]', c.adminToken())
  await page.locator('#token-form button[type=submit]').click()
  await page.locator('body.admin').waitFor()
  await page.locator('#campaign-pause').click()
  await page.locator('#campaign-status', { hasText: 'paused' }).waitFor()
  t.equal(await status(), 'paused')

  await page.locator('#merge-rows button', { hasText: 'revert' }).first().click()
  await page.locator('#merge-rows tr').first().locator('.badge', { hasText: 'reverted' }).waitFor()
  t.same((await httpClient(c.url, null).dashboard.merges.query({ campaign: 'demo' })).map(m => m.reverted), [true, false])
  await page.locator('#tile-merges', { hasText: '1' }).waitFor()

  await page.fill('#hypothesis-add [name=title]', 'cosine warmdown instead of linear')
  await page.fill('#hypothesis-add [name=priority]', '7')
  await page.locator('#hypothesis-add button[type=submit]').click()
  await page.locator('#hypothesis-rows tr', { hasText: 'cosine warmdown instead of linear' }).waitFor()
  t.same((await cells(page, '#hypothesis-rows tr >> nth=0')).slice(0, 2), ['7', 'cosine warmdown instead of linear'])

  t.equal(await page.evaluate(key => localStorage.getItem(key) !== null, 'autoresearch-grid.adminToken'), true, 'the token is kept in this browser')
})

t.test('hostile names, descriptions and diffs render as text', { skip }, async t => {
  const c = await startCoordinator()
  t.teardown(c.close)
  await c.campaign('demo', { replications: 0, baselineRuns: 1 })
  const evil = {
    contributor: '<img src=x onerror="window.pwned=1">',
    worker: '<script>window.pwned=2</script>',
    description: '<b>bold</b><img src=x onerror="window.pwned=3">',
    hypothesis: '<svg onload="window.pwned=4">idea</svg>',
  }
  const w = await join(c, evil.contributor, evil.worker)
  t.teardown(w.close)
  await httpClient(c.url, c.adminToken()).admin.addHypothesis.mutate({ campaign: 'demo', title: evil.hypothesis, priority: 5 })
  const r = await explore(w, { source: 'DEPTH = 5\n# </pre><img src=x onerror="window.pwned=5">\n', valBpb: 1.4, description: evil.description,
    agentNotes: '<iframe src="javascript:window.pwned=6"></iframe>' })

  const page = await open(t, c.url)
  await page.locator('#experiment-rows tr', { hasText: evil.description }).waitFor()
  t.equal(await page.locator('#leaderboard-rows td.name').first().textContent(), evil.contributor)
  t.match(await page.locator('#worker-list').textContent(), evil.worker)
  t.match(await page.locator('#hypothesis-rows').textContent(), evil.hypothesis)
  await page.locator(`#experiment-rows tr[data-experiment="${r.experimentId}"]`).click()
  await page.locator('#detail[open] pre.diff', { hasText: '</pre><img src=x' }).waitFor()
  t.match(await page.locator('#detail pre.notes').textContent(), '<iframe src="javascript:window.pwned=6"></iframe>')
  t.equal(await page.locator('main img, main script, main svg, main b, main iframe, #detail img, #detail iframe, #detail b').count(), 0, 'no element came from the data')
  t.equal(await page.evaluate(() => (window as unknown as { pwned?: number }).pwned), undefined, 'nothing ran')
})

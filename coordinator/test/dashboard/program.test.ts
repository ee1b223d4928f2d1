import t from 'tap'
import { open, skip } from './browser.ts'
import { httpClient, startCoordinator } from '../helpers.ts'
import { createCampaign } from '../../src/campaigns/campaigns.ts'

// The maintainer steers a running campaign from the dashboard: program.md and its history are
// shown to everyone, and edited behind the admin token. Debian's Chromium, driven by playwright-core.

t.test('program.md is shown with its history, and the admin panel saves a new version', { skip }, async t => {
  const c = await startCoordinator()
  t.teardown(c.close)
  await createCampaign(c.app, { name: 'demo', seed: { 'train.py': 'X = 1\n' }, spec: { budgetSeconds: 10, profile: 'cpu-tiny' },
    program: { text: '# Research program\nStudy the learning rates.\n', author: { name: 'Maja Maintainer', email: 'maja@example.org' } } })
  const page = await open(t, c.url)
  await page.locator('#program-text', { hasText: 'Study the learning rates.' }).waitFor()
  await page.locator('#program-history li', { hasText: 'Maja Maintainer · program.md at campaign creation' }).waitFor()
  t.equal(await page.locator('#program-form').isVisible(), false, 'without the admin token there is nothing to edit')

  await page.fill('#token-form [name=token]', c.adminToken())
  await page.locator('#token-form button[type=submit]').click()
  await page.locator('body.admin').waitFor()
  t.equal(await page.inputValue('#program-form [name=text]'), '# Research program\nStudy the learning rates.\n', 'the editor starts from the current text')
  await page.fill('#program-form [name=text]', '# Research program\nNow study the schedule.\n')
  await page.fill('#program-form [name=message]', 'switch to the schedule')
  await page.locator('#program-form button[type=submit]').click()
  await page.locator('#notice', { hasText: 'Saved program.md' }).waitFor()
  await page.locator('#program-text', { hasText: 'Now study the schedule.' }).waitFor()
  await page.locator('#program-history li', { hasText: 'switch to the schedule' }).waitFor()
  const shown = await httpClient(c.url, null).dashboard.program.query({ campaign: 'demo' })
  t.equal(shown.current?.text, '# Research program\nNow study the schedule.\n', 'the coordinator has the new version')
  t.equal(shown.history.length, 2)
})

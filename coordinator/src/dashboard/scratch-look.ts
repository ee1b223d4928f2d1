import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium } from 'playwright-core'
import { openCoordinator } from '../coordinator.ts'
import { buildServer } from '../server.ts'
import { createAdminToken } from '../auth/access.ts'
import { seedDemo } from './demo.ts'
const CHROMIUM = '/usr/bin/chromium'; const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu']

const dir = await mkdtemp(join(tmpdir(), 'arg-look-'))
const app = await openCoordinator(dir, { pollMs: 200, leaseMarginSeconds: 3 * 86400 })
const server = await buildServer(app)
const url = await server.listen({ port: 0, host: '127.0.0.1' })
const demo = await seedDemo(app, url)
const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS })
const page = await browser.newPage({ viewport: { width: 1440, height: 1000 } })
const logs: string[] = []
page.on('console', m => logs.push(`${m.type()}: ${m.text()}`))
page.on('pageerror', e => logs.push(`pageerror: ${e.message}`))
await page.goto(`${url}/?campaign=${demo.campaign}`)
await page.locator('#live.on').waitFor()
await page.locator('#experiment-rows tr[data-experiment]').first().waitFor()
await page.waitForTimeout(1000)
await page.screenshot({ path: '/tmp/look-top.png', clip: { x: 0, y: 0, width: 1440, height: 620 } })
// hover a dot
const box = (await page.locator('#chart .u-over').boundingBox())!
await page.mouse.move(box.x + box.width * 0.2, box.y + box.height * 0.5)
await page.waitForTimeout(300)
await page.screenshot({ path: '/tmp/look-hover.png', clip: { x: 0, y: 100, width: 1440, height: 520 } })
// admin mode
await page.fill('#token-form [name=token]', createAdminToken(app))
await page.click('#token-form button[type=submit]')
await page.waitForTimeout(500)
// open a kept experiment
await page.locator('#experiment-rows tr.row-kept').first().click()
await page.locator('#detail[open]').waitFor()
await page.waitForTimeout(500)
await page.screenshot({ path: '/tmp/look-detail.png' })
await page.keyboard.press('Escape')
await page.screenshot({ path: '/tmp/look-admin.png', fullPage: true })
console.log(logs.join('\n'))
await browser.close()
demo.close()
await server.close()
app.close()

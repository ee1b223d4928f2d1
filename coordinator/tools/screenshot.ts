/**
 * Makes docs/dashboard.png: starts a coordinator in a temporary directory, fills it with the demo
 * campaign (coordinator/tools/demo.ts) and photographs the page in Debian's Chromium.
 *
 *   npx tsx coordinator/tools/screenshot.ts [out.png]      # default docs/dashboard.png
 *   npx tsx coordinator/tools/screenshot.ts --serve        # keep it running to look around
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { chromium } from 'playwright-core'
import { openCoordinator } from '../src/coordinator.ts'
import { buildServer } from '../src/server.ts'
import { createAdminToken } from '../src/auth/access.ts'
import { seedDemo } from './demo.ts'

const CHROMIUM = '/usr/bin/chromium'
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync']

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..')
const serve = process.argv.includes('--serve')
const out = resolve(process.argv.slice(2).find(a => !a.startsWith('--')) ?? join(root, 'docs', 'dashboard.png'))

const dir = await mkdtemp(join(tmpdir(), 'arg-demo-'))
const app = await openCoordinator(dir, { pollMs: 200, leaseMarginSeconds: 3 * 86400 })
const server = await buildServer(app)
const url = await server.listen({ port: Number(process.env.PORT ?? 0), host: '127.0.0.1' })
const demo = await seedDemo(app, url)

if (serve) {
  console.log(`dashboard: ${url}/?campaign=${demo.campaign}\nadmin token: ${createAdminToken(app)}\n(Ctrl-C to stop; the data lives in ${dir})`)
} else {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS })
  try {
    const page = await browser.newPage({ viewport: { width: 1440, height: 1000 }, deviceScaleFactor: 1 })
    await page.goto(`${url}/?campaign=${demo.campaign}`)
    await page.locator('#live.on').waitFor()
    await page.locator('#experiment-rows tr[data-experiment]').first().waitFor()
    await page.waitForTimeout(1500) // let the progress bars ease into place
    await page.screenshot({ path: out, fullPage: true })
    console.log(`wrote ${out}`)
  } finally {
    await browser.close()
    demo.close()
    await server.close()
    app.close()
    await rm(dir, { recursive: true, force: true })
  }
}

import t, { type Test } from 'tap'
import { existsSync } from 'node:fs'
import { chromium, type Browser, type Page } from 'playwright-core'

// Debian's Chromium, driven by playwright-core: the dashboard's browser tests share one per file.
export const CHROMIUM = '/usr/bin/chromium'
export const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync']
export const skip = existsSync(CHROMIUM) ? false : `no Chromium at ${CHROMIUM}: install Debian's chromium package (npm test does it where apt-get is usable)`

let browser: Promise<Browser> | null = null
export function launch(): Promise<Browser> {
  browser ??= chromium.launch({ executablePath: CHROMIUM, args: ARGS }).then(b => {
    t.teardown(() => b.close())
    return b
  })
  return browser
}

/** A fresh page on the coordinator, failing the test on any script error in the page. */
export async function open(t: Test, url: string): Promise<Page> {
  const context = await (await launch()).newContext({ viewport: { width: 1400, height: 1000 } })
  t.teardown(() => context.close())
  const page = await context.newPage()
  // No deadline of Playwright's own (its default is 30 s): a loaded machine may take longer, and a
  // wait that never ends is ended by tap's timeout for the file (.taprc).
  page.setDefaultTimeout(0)
  page.on('pageerror', err => t.fail(`error in the page: ${err.message}`))
  page.on('dialog', d => d.accept())
  await page.goto(url)
  await page.locator('#live.on').waitFor()
  return page
}

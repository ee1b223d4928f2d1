import t from 'tap'
import { open, skip } from './browser.ts'
import { joinWorkers, report, startCoordinator } from '../helpers.ts'
import { drive, freshEdit } from '../hostile/drive.ts'

// Issue 15, part 4: the contributor monitor in a real browser (Debian's Chromium, as page.test.ts).
// A lowball reporter — every number it sends 0.05 below what its runs gave, σ 0.01 — is flagged
// next to honest contributors whose runs of the same commits agree; nobody is banned.

t.test('the monitor flags a contributor whose runs disagree with others\' runs of the same commits, and bans nobody', { skip }, async t => {
  const c = await startCoordinator()
  t.teardown(c.close)
  await c.campaign('demo', { replications: 2, baselineRuns: 4, priorSigma: 0.01 })
  const workers = await joinWorkers(c, ['ann', 'ben', 'dee', 'lowe'])
  t.teardown(() => workers.forEach(w => w.close()))
  // The truth of a source: edits whose MATRIX_LR ends in an odd digit are 0.03 better.
  const truth = (src: string) => 1.5 - (Number(/MATRIX_LR = [0-9.]*(\d)\n/.exec(src)?.[1] ?? 0) % 2 ? 0.03 : 0)
  let noise = 0
  let units = 0
  await drive(workers, (w, u) => {
    units++
    const source = u.kind === 'explore' ? freshEdit(u.source['train.py']) : u.source['train.py']
    const v = truth(source) + 0.004 * Math.sin(++noise) - (w.name === 'lowe' ? 0.05 : 0)
    return u.kind === 'explore' ? report(u, v, source) : report(u, v)
  }, () => units >= 48)

  const page = await open(t, c.url)
  const lowe = page.locator('#monitor-rows tr[data-contributor="lowe"]')
  await lowe.waitFor()
  t.equal(await lowe.getAttribute('class'), 'flagged', 'the lowball reporter is flagged')
  t.match(await lowe.textContent(), /flagged.*disagree with other contributors' runs beyond noise.*run low/s)
  for (const name of ['ann', 'ben', 'dee']) {
    const r = page.locator(`#monitor-rows tr[data-contributor="${name}"]`)
    t.not(await r.getAttribute('class'), 'flagged', `${name} is not flagged`)
  }
  t.equal((await page.locator('#class-rows tr[data-class="cpu-x86_64"] td').nth(1).textContent()), 'yes (founding)')
  const banned = (c.app.db.$client.prepare('select count(*) as n from workers where banned = 1').get() as { n: number }).n
  t.equal(banned, 0, 'a flag prompts the maintainer; it bans nobody')
})

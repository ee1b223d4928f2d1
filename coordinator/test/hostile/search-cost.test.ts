import t from 'tap'
import { experiments } from '../../src/db/schema.ts'
import { SEARCH_DIFF_CHARS, SEARCH_WINDOW } from '../../src/swarm/read.ts'
import { TEXT_SEARCH_WINDOW } from '../../src/dashboard/queries.ts'
import { CPU, httpClient, startCoordinator, wsClient } from '../helpers.ts'

// Searches read rows in the event loop, and one for a word nobody wrote reads every row it may. A
// contributor may store diffs of up to 256 KiB (a source of random text), each experiment's decision
// is stored after its diff, and nothing paced the searches: over 2,000 experiments with 200 KB
// diffs, one `swarm.search` (any worker) held the coordinator for ~0.5 s and one anonymous
// `dashboard.experiments` search for ~0.2 s, on a loaded 2-core machine, as often as asked. Now a
// search reads a bounded number of the campaign's newest experiments, and the swarm's only the
// head of each diff: ~0.06 s and ~0.09 s on the same rows. What is found follows from that.

t.test('a search reads only the campaign\'s newest experiments, and the swarm\'s only the head of each diff', async t => {
  const c = await startCoordinator()
  t.teardown(c.close)
  await c.campaign('demo')
  const rows = Math.max(SEARCH_WINDOW, TEXT_SEARCH_WINDOW) + 1
  const filler = 'x'.repeat(SEARCH_DIFF_CHARS)
  c.app.db.transaction(tx => {
    for (let i = 0; i < rows; i++) {
      // The oldest row names a word nobody else wrote; the newest has one past the head of its diff, one inside it.
      const diff = i === 0 ? '+OLDWORD = 1\n' : i === rows - 1 ? `+HEADWORD = 1\n${filler}\n+TAILWORD = 1\n` : '+X = 1\n'
      tx.insert(experiments).values({ id: `e_${String(i).padStart(5, '0')}`, unitId: `u_${i}`, campaign: 'demo', kind: 'explore', workerId: 'w', contributorId: 'c',
        hardwareClass: 'cpu-x86_64', parentCommit: 'p', commit: 'x', description: i === 0 ? 'oldword' : 'an edit', diff, sourceHash: 'h', linesDelta: 0,
        status: 'crash', decision: 'crashed', logTail: '', agentNotes: '', createdAt: i + 1 } as never).run()
    }
  })
  const { api, close } = wsClient(c.url, c.workerToken('mallory'))
  t.teardown(close)
  const { workerId } = await api.worker.hello.mutate({ name: 'm', hardware: CPU, fingerprints: {}, version: 't' })
  const search = async (text: string) => (await api.swarm.search.query({ workerId, campaign: 'demo', query: { text, limit: 10 } })).length
  t.equal(await search('headword'), 1, 'the swarm finds a word in the head of a recent diff')
  t.equal(await search('tailword'), 0, `not one past its first ${SEARCH_DIFF_CHARS} characters`)
  t.equal(await search('oldword'), 0, `nor one only in an experiment older than the newest ${SEARCH_WINDOW}`)
  const board = httpClient(c.url, null)
  t.equal((await board.dashboard.experiments.query({ campaign: 'demo', text: 'oldword' })).length, 0, `the dashboard's search reads the newest ${TEXT_SEARCH_WINDOW}`)
  t.ok((await board.dashboard.experiments.query({ campaign: 'demo', text: 'crashed', limit: 5 })).length === 5, 'and finds words in them as before')
})

import t from 'tap'
import WebSocket from 'ws'
import { SERVER_LIMITS } from '../../src/http/trpc.ts'
import { startCoordinator } from '../helpers.ts'

// DESIGN §11, bounded queues: one address cannot hold an unbounded number of WebSockets (each one
// is a context, a keep-alive timer and possibly subscriptions).

function open(url: string, localAddress = '127.0.0.1'): Promise<WebSocket | number> {
  return new Promise(resolve => {
    const ws = new WebSocket(url.replace(/^http/, 'ws') + '/trpc', { localAddress })
    ws.once('open', () => resolve(ws))
    ws.once('unexpected-response', (_req, res) => { resolve(res.statusCode ?? 0); ws.terminate() })
    ws.once('error', () => resolve(-1))
  })
}

t.test(`one address holds at most ${SERVER_LIMITS.socketsPerAddress} WebSockets; others are not affected`, async t => {
  const c = await startCoordinator()
  t.teardown(c.close)
  const held: WebSocket[] = []
  t.teardown(() => held.forEach(ws => ws.terminate()))
  for (let i = 0; i < SERVER_LIMITS.socketsPerAddress; i++) {
    const ws = await open(c.url)
    if (typeof ws === 'number') return t.fail(`socket ${i} refused with ${ws}`)
    held.push(ws)
  }
  t.equal(await open(c.url), 429, 'one more from the same address is refused with 429')
  const other = await open(c.url, '127.0.0.2')
  t.type(other, WebSocket, 'another address still connects')
  if (typeof other !== 'number') other.close()
  const closed = new Promise(r => held[0].once('close', r))
  held.shift()!.close()
  await closed
  await new Promise(r => setTimeout(r, 100))
  const again = await open(c.url)
  t.type(again, WebSocket, 'a closed socket frees its place')
  if (typeof again !== 'number') held.push(again)
  t.equal((await fetch(`${c.url}/health`)).status, 200)
})

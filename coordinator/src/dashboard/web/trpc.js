// The page's tRPC client, small enough to read in one go and needing no bundler. It speaks tRPC's
// own wire formats (the coordinator's appRouter, no transformer):
//   query:        GET  /trpc/<path>?input=<JSON>          → { result: { data } } or { error }
//   mutation:     POST /trpc/<path>  body <JSON input>    → the same
//   subscription: WebSocket /trpc, JSON-RPC messages
//                 → { id, method: 'subscription', params: { path, input } }
//                 ← { id, result: { type: 'started' | 'data' | 'stopped', data } } or { id, error }
//                 the server's "PING" text is answered "PONG"; { method: 'reconnect' } means reconnect.
// The admin token goes in the Authorization header; the subscription is public and needs none.

export class ApiError extends Error {
  constructor(message, code) {
    super(message)
    this.code = code
  }
}

async function unwrap(res) {
  const body = await res.json().catch(() => null)
  if (body?.error) throw new ApiError(body.error.message ?? 'request failed', body.error.data?.code)
  if (!res.ok || !body?.result) throw new ApiError(`the coordinator answered ${res.status}`, 'HTTP')
  return body.result.data
}

const auth = token => (token ? { authorization: `Bearer ${token}` } : {})

export async function query(path, input, token) {
  const qs = input === undefined ? '' : `?input=${encodeURIComponent(JSON.stringify(input))}`
  return unwrap(await fetch(`/trpc/${path}${qs}`, { headers: auth(token) }))
}

export async function mutate(path, input, token) {
  return unwrap(await fetch(`/trpc/${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...auth(token) },
    body: JSON.stringify(input ?? null),
  }))
}

/**
 * Keeps one subscription open, reconnecting with backoff. onState('live' | 'offline') tells the
 * page whether it may have missed events (it re-reads everything when it comes back).
 * Returns a function that closes it for good.
 */
export function subscribe(path, input, { onData, onState }) {
  let ws = null
  let closed = false
  let attempt = 0
  let timer = null

  function open() {
    ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/trpc`)
    ws.onopen = () => ws.send(JSON.stringify({ id: 1, method: 'subscription', params: { path, input } }))
    ws.onmessage = ev => {
      if (ev.data === 'PING') return ws.send('PONG')
      const msg = JSON.parse(ev.data)
      if (msg.method === 'reconnect') return ws.close()
      if (msg.error) {
        console.warn(`subscription ${path}: ${msg.error.message}`)
        return ws.close()
      }
      if (msg.result?.type === 'started') {
        attempt = 0
        onState('live')
      } else if (msg.result?.type === 'data') onData(msg.result.data)
    }
    ws.onclose = () => {
      onState('offline')
      if (!closed) timer = setTimeout(open, Math.min(10_000, 500 * 2 ** attempt++))
    }
  }

  open()
  return () => {
    closed = true
    clearTimeout(timer)
    ws?.close()
  }
}

import { createServer, connect, type Server, type Socket } from 'node:net'

/**
 * A bad network on loopback: a TCP proxy that delays every chunk (in order) and cuts each
 * connection after a random lifetime, both ways at once, wherever that falls: in a WebSocket
 * frame, between a request and its answer, in the middle of an HTTP body.
 */
export interface FlakyOptions {
  /** Delay added to each chunk, ms. */
  delayMs: () => number
  /** How long a connection may live before it is cut, ms; null: not cut. */
  lifetimeMs: () => number | null
}

export class FlakyProxy {
  connections = 0
  cuts = 0
  chunks = 0
  private server: Server | null = null
  private readonly open = new Set<Socket>()
  private calm = false

  constructor(private readonly target: { host: string; port: number }, private readonly o: FlakyOptions) {}

  async listen(): Promise<string> {
    this.server = createServer(client => this.relay(client))
    await new Promise<void>(resolve => this.server!.listen(0, '127.0.0.1', resolve))
    const address = this.server.address()
    return `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`
  }

  /** From now on, no more cuts or delays (new connections go straight through). */
  settle(): void {
    this.calm = true
  }

  private relay(client: Socket): void {
    this.connections++
    const upstream = connect(this.target.port, this.target.host)
    for (const s of [client, upstream]) {
      this.open.add(s)
      s.on('close', () => this.open.delete(s))
      s.on('error', () => {})
    }
    const cut = () => {
      if (client.destroyed && upstream.destroyed) return
      client.destroy()
      upstream.destroy()
    }
    client.on('close', cut)
    upstream.on('close', cut)
    const pipe = (from: Socket, to: Socket) => {
      let chain = Promise.resolve()
      from.on('data', chunk => {
        this.chunks++
        const delay = this.calm ? 0 : this.o.delayMs()
        chain = chain.then(() => (delay > 0 ? new Promise(r => setTimeout(r, delay)) : undefined)).then(() => { if (!to.destroyed) to.write(chunk) })
      })
    }
    pipe(client, upstream)
    pipe(upstream, client)
    const life = this.calm ? null : this.o.lifetimeMs()
    if (life !== null) {
      const timer = setTimeout(() => {
        if (this.calm || client.destroyed) return
        this.cuts++
        cut()
      }, life)
      client.on('close', () => clearTimeout(timer))
    }
  }

  async close(): Promise<void> {
    for (const s of this.open) s.destroy()
    await new Promise<void>(resolve => (this.server ? this.server.close(() => resolve()) : resolve()))
  }
}

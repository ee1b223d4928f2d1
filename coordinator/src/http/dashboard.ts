import type { FastifyInstance } from 'fastify'
import fastifyStatic from '@fastify/static'
import { readFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { runtimeFile } from '@autoresearch-grid/shared'
import type { Ctx } from '../context.ts'
import { statusPage, statusSections } from '../status/page.ts'

const here = dirname(fileURLToPath(import.meta.url))
/** The page, its ES modules and its stylesheet: plain files, edited and reloaded, no build step. */
const WEB_DIR = runtimeFile('dashboardWeb', () => join(here, '..', 'dashboard', 'web'))
/** uPlot (the chart) from node_modules, so the page needs no CDN and works offline. */
const UPLOT_DIR = runtimeFile('uplot', () => join(dirname(createRequire(import.meta.url).resolve('uplot/package.json')), 'dist'))

/**
 * The page only runs its own scripts and talks only to its own origin: a name or a diff that
 * slipped through as markup still could not run or phone home. uPlot sizes its elements through
 * inline styles, hence style-src 'unsafe-inline'.
 */
const CSP = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; " +
  "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

/**
 * The live dashboard (docs/DASHBOARD.md): `/` is web/index.html with the plain status summary
 * inside <noscript>; /assets/ serves web/, /vendor/uplot/ the chart library, and /status the plain
 * summary as a page of its own. The page reads through tRPC (HTTP GET for queries, POST for the
 * maintainer's mutations) and listens on one tRPC subscription over the WebSocket at /trpc.
 */
export async function dashboardPlugin(server: FastifyInstance, opts: { app: Ctx }): Promise<void> {
  const { app } = opts
  // max-age 0 with an ETag: browsers revalidate, so an edited file shows up on the next reload.
  await server.register(fastifyStatic, { root: WEB_DIR, prefix: '/assets/', index: false })
  await server.register(fastifyStatic, {
    root: UPLOT_DIR, prefix: '/vendor/uplot/', decorateReply: false, index: false, maxAge: '1d',
    allowedPath: path => path === '/uPlot.esm.js' || path === '/uPlot.min.css',
  })
  // This plugin is its own fastify context, so the hook covers exactly the dashboard's routes.
  server.addHook('onSend', async (_req, reply) => {
    reply.header('content-security-policy', CSP)
    reply.header('x-content-type-options', 'nosniff')
  })
  server.get('/', async (_req, reply) => {
    // Read on every request: a maintainer editing the page sees the change on reload.
    const page = await readFile(join(WEB_DIR, 'index.html'), 'utf8')
    const fallback = `<noscript><div class="noscript">${statusSections(app)}</div></noscript>`
    // A function, not a string: in a replacement string `$\`` and `$'` splice the page into itself,
    // and the summary carries contributors' descriptions (test/hostile/text.test.ts).
    return reply.type('text/html; charset=utf-8').header('cache-control', 'no-cache').send(page.replace('<!-- status -->', () => fallback))
  })
  server.get('/status', async (_req, reply) => reply.type('text/html; charset=utf-8').send(statusPage(app)))
}

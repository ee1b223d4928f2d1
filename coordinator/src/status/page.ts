import type { Ctx } from '../context.ts'
import { listCampaigns } from '../campaigns/campaigns.ts'
import { liveWorkers, overview, recentExperiments } from '../dashboard/queries.ts'

/** Everything shown on a page goes through here: names and descriptions come from strangers. */
export function escapeHtml(s: unknown): string {
  return String(s ?? '').replace(/[&<>"']/g, ch => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[ch]!)
}

const fmt = (v: number | null | undefined) => (v === null || v === undefined ? '–' : v.toFixed(6))

/**
 * The plain summary: workers, campaigns and their latest experiments, as server-rendered HTML.
 * The dashboard at / embeds it for readers without JavaScript (and for curl); /status serves it
 * as a page of its own that refreshes itself.
 */
export function statusSections(app: Ctx): string {
  const sections = listCampaigns(app).map(c => {
    const o = overview(app, c.name)!
    const rows = recentExperiments(app, c.name, 30).map(e => `<tr class="${escapeHtml(e.status)}"><td>${new Date(e.createdAt).toISOString().slice(11, 19)}</td>` +
      `<td>${escapeHtml(e.kind)}</td><td>${escapeHtml(e.status)}</td><td>${fmt(e.valBpb)}</td><td>${escapeHtml(e.description)}</td>` +
      `<td>${escapeHtml(e.worker)}</td><td>${escapeHtml(e.hardwareClass)}</td><td><code>${escapeHtml(e.commit.slice(0, 10))}</code></td></tr>`).join('')
    return `<section><h2>${escapeHtml(c.name)} <small>${escapeHtml(o.status)} · ${escapeHtml(o.spec.profile)} · ${o.spec.budgetSeconds}s budget</small></h2>
<p>best val_bpb <b id="best-${escapeHtml(c.name)}">${fmt(o.bestValBpb)}</b> at <code>${escapeHtml(o.bestCommit.slice(0, 10))}</code> on <code>${escapeHtml(o.branch)}</code> · ${o.merges} merges ·
${Object.entries(o.counts).map(([k, n]) => `${escapeHtml(k)} ${n}`).join(' · ') || 'no experiments yet'}</p>
${o.review.warning ? `<p class="warning"><b>warning:</b> ${escapeHtml(o.review.warning)}</p>` : ''}
<table><thead><tr><th>time</th><th>kind</th><th>status</th><th>val_bpb</th><th>description</th><th>worker</th><th>class</th><th>commit</th></tr></thead><tbody>${rows}</tbody></table></section>`
  }).join('\n')
  const workers = liveWorkers(app).map(w => `<li>${escapeHtml(w.name)} (${escapeHtml(w.contributor)}, ${escapeHtml(w.hardwareClass)}): ` +
    (w.unit ? `${escapeHtml(w.unit.kind)} ${w.unit.progress ? `${w.unit.progress.percent.toFixed(0)}%` : 'starting'}` : 'idle') +
    ` · seen ${Math.round((Date.now() - w.lastSeen) / 1000)}s ago</li>`).join('')
  return `<h3>Workers</h3><ul>${workers || '<li>none yet: run <code>worker join</code></li>'}</ul>${sections || '<p>No campaigns yet: <code>coordinator campaign create NAME</code></p>'}`
}

/** The plain summary as a self-refreshing page of its own. */
export function statusPage(app: Ctx): string {
  return `<!doctype html><html><head><meta charset="utf-8"><meta http-equiv="refresh" content="3"><title>autoresearch-grid</title>
<style>body{font:14px system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;width:100%}td,th{padding:3px 8px;border-bottom:1px solid #eee;text-align:left}
tr.kept{background:#e6f7e6}tr.crash,tr.rejected,tr.rejected-unsafe{color:#a33}small{color:#777;font-weight:normal}</style></head>
<body><h1>autoresearch-grid</h1>${statusSections(app)}<p><a href="/">the live dashboard</a></p></body></html>`
}

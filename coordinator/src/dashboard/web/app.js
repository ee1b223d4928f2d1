// The dashboard page: reads each section through tRPC queries, re-reads the sections a live event
// says changed, and offers the maintainer's actions behind the admin token.
//
// Names, descriptions, hypotheses, diffs and logs are strangers' text: they only ever reach the
// page through `h()` below (textContent), never as markup.
import { ApiError, mutate, query, subscribe } from './trpc.js'
import { CLASS_COLORS, ProgressChart } from './chart.js'
import { agentBox, maintainerBox, renderReviews } from './reviews.js'

const TOKEN_KEY = 'autoresearch-grid.adminToken'
const STATUSES = ['pending', 'awaiting-review', 'merging', 'kept', 'discarded', 'measured', 'stale', 'crash', 'rejected', 'rejected-unsafe']
const KINDS = ['explore', 'baseline', 'verify', 'rebase']
// Maintainer actions of the page (admin.*, coordinator/src/api/admin.ts): the admin token is required.
const REVERT_MERGE = 'admin.revertMerge'
const UPDATE_HYPOTHESIS = 'admin.updateHypothesis'

const $ = id => document.getElementById(id)

/** h('td', { class: 'num', title }, 'text', childNode…): builds an element; strings become text nodes. */
function h(tag, props = {}, ...children) {
  const el = document.createElement(tag)
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue
    if (k === 'class') el.className = v
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v)
    else if (k === 'dataset') Object.assign(el.dataset, v)
    else el.setAttribute(k, v === true ? '' : String(v))
  }
  el.append(...nodes(children))
  return el
}

/** Children as DOM nodes: nested lists flattened, null/false dropped, everything else as text. */
const nodes = children => children.flat(Infinity).filter(c => c !== null && c !== undefined && c !== false).map(c => (c instanceof Node ? c : document.createTextNode(String(c))))

/** Replaces an element's content, with the same rules as h(). */
const fill = (el, ...children) => el.replaceChildren(...nodes(children))

const bpb = (v, digits = 4) => (v === null || v === undefined ? '–' : v.toFixed(digits))
const signed = (v, digits = 4) => (v === null || v === undefined ? '–' : `${v > 0 ? '+' : v < 0 ? '−' : '±'}${Math.abs(v).toFixed(digits)}`)
const short = sha => (sha ? sha.slice(0, 10) : '')
const badge = (text, kind = text) => h('span', { class: `badge status-${kind}` }, text)

function ago(ms) {
  const s = Math.max(0, Math.round(ms / 1000))
  if (s < 60) return `${s} s ago`
  if (s < 3600) return `${Math.round(s / 60)} min ago`
  if (s < 86400) return `${Math.round(s / 3600)} h ago`
  return `${Math.round(s / 86400)} d ago`
}

function when(t) {
  const d = new Date(t)
  const today = new Date().toDateString() === d.toDateString()
  return today ? d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }) : d.toLocaleString([], { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' })
}

const state = {
  campaign: new URLSearchParams(location.search).get('campaign'),
  token: localStorage.getItem(TOKEN_KEY) ?? '',
  admin: false,
  /** The server's clock minus ours, so "seen 5 s ago" is right even when the clocks differ. */
  skew: 0,
  workers: [],
  merges: [],
  detail: null,
}
const serverNow = () => Date.now() + state.skew

const api = path => input => query(path, input, state.token)

// ---------------------------------------------------------------------------------------------
// Sections. Each loader reads one query and renders one part of the page.

async function loadCampaigns() {
  const list = await api('dashboard.campaigns')()
  const select = $('campaign')
  if (!state.campaign || !list.some(c => c.name === state.campaign)) state.campaign = list[0]?.name ?? null
  select.replaceChildren(...list.map(c => h('option', { value: c.name, selected: c.name === state.campaign }, c.name)))
  return list
}

async function loadSummary() {
  if (!state.campaign) return
  const s = await api('dashboard.summary')({ campaign: state.campaign })
  if (!s) return
  state.skew = s.now - Date.now()
  state.summary = s
  $('campaign-status').replaceChildren(badge(s.status))
  $('branch').textContent = `${s.branch} @ ${short(s.bestCommit)}`
  $('tile-best').textContent = bpb(s.bestValBpb)
  $('tile-best-note').textContent = s.primaryClass ? `${s.bestSamples ? `mean of ${s.bestSamples} on ` : 'on '}${s.primaryClass}` : 'waiting for a baseline'
  const primary = s.noise[0]
  $('tile-sigma').textContent = primary ? primary.sigma.toFixed(4) : bpb(s.spec.noise.priorSigma)
  $('tile-sigma-note').textContent = primary
    ? primary.source === 'measured' ? `pooled over ${primary.degreesOfFreedom} repeats` : `prior (${primary.degreesOfFreedom} of 3 repeats so far)`
    : 'prior from the campaign spec'
  $('tile-merges').textContent = String(s.merges)
  $('tile-merges-note').textContent = `${s.experiments} experiments in all`
  $('tile-rate').textContent = String(s.experimentsLastHour)
  $('tile-rate-note').textContent = 'in the last hour'
  $('tile-gpus').textContent = String(s.workersOnline)
  $('tile-gpus-note').textContent = `of ${s.workersTotal} workers`
  $('tile-hours').textContent = s.gpuHours.toFixed(1)
  $('tile-hours-note').textContent = `${s.spec.budgetSeconds} s per run · ${s.spec.profile}`
  // The review fallback is a standing warning: a banner while it applies (review/policy.ts).
  $('review-banner').hidden = !s.review.warning
  $('review-banner').textContent = s.review.warning ? `Campaign ${s.name}: ${s.review.warning}.` : ''
  $('review-mode').textContent = s.review.mode === s.review.requested ? `· review: ${s.review.mode}` : `· review: ${s.review.requested}, here ${s.review.mode}`
  $('review-form').elements.review.value = s.review.requested
  const paused = s.status === 'paused'
  $('campaign-pause').disabled = paused
  $('campaign-resume').disabled = !paused
}

let chart = null
async function loadCurve() {
  if (!state.campaign) return
  const curves = await api('dashboard.curve')({ campaign: state.campaign })
  chart ??= new ProgressChart($('chart'), $('chart-tip'), openDetail)
  chart.update(curves, serverNow())
  const n = curves.reduce((s, c) => s + c.points.length, 0)
  const bests = curves.filter(c => c.best.length).map(c => `${c.best[c.best.length - 1].valBpb.toFixed(4)} on ${c.hardwareClass}`)
  $('chart-caption').textContent = n
    ? `${n} measured experiments on ${curves.length} hardware class${curves.length === 1 ? '' : 'es'} · running best ${bests.join(', ') || '–'}`
    : 'No results yet: the chart fills in as workers report.'
  $('chart-legend').replaceChildren(
    ...curves.map((c, k) => h('span', { class: 'legend-item' },
      h('i', { class: 'swatch', style: `background:${CLASS_COLORS[k % CLASS_COLORS.length]}` }),
      c.hardwareClass, h('span', { class: 'muted' }, ` σ ${c.noise.sigma.toFixed(4)}${c.noise.source === 'prior' ? ' (prior)' : ''}`))),
    h('span', { class: 'legend-item muted' }, '● kept (line: running best, band: ± σ) · ○ tried · • baseline/verify · ', h('span', { class: 'reverted-key' }, '○'), ' reverted'),
  )
}

async function loadLeaderboard() {
  if (!state.campaign) return
  const rows = await api('dashboard.leaderboard')({ campaign: state.campaign })
  $('leaderboard-rows').replaceChildren(...rows.map((r, i) => h('tr', {},
    h('td', { class: 'rank' }, String(i + 1)),
    h('td', { class: 'name' }, r.contributor),
    h('td', { class: 'num' }, String(r.merges)),
    h('td', { class: `num ${r.deltaValBpb > 0 ? 'good' : ''}` }, r.deltaValBpb ? r.deltaValBpb.toFixed(4) : '0'),
    h('td', { class: 'num' }, String(r.experiments)),
    h('td', { class: 'num' }, String(r.verifications)),
    h('td', { class: 'num' }, r.gpuHours.toFixed(2)),
    h('td', { class: 'admin-only' }, h('button', { type: 'button', class: 'small danger', title: 'revoke every token of this contributor',
      onclick: () => revokeTokens(r.contributor) }, 'revoke')),
  )))
  if (!rows.length) $('leaderboard-rows').append(h('tr', {}, h('td', { colspan: 8, class: 'muted' }, 'Nobody has reported yet.')))
}

async function loadWorkers() {
  const board = await api('dashboard.workerBoard')()
  state.skew = board.now - Date.now()
  state.workers = board.workers
  renderWorkers()
  const select = document.querySelector('#experiment-filters [name=workerId]')
  const chosen = select.value
  select.replaceChildren(h('option', { value: '' }, 'any worker'),
    ...board.workers.map(w => h('option', { value: w.id, selected: w.id === chosen }, `${w.name} (${w.contributor ?? '?'})`)))
}

function renderWorkers() {
  const online = state.workers.filter(w => w.online).length
  $('workers-count').textContent = `${online} online`
  // Bars start where they were drawn last, so the width change animates instead of jumping.
  const drawn = new Map([...$('worker-list').querySelectorAll('[data-worker]')].map(li => [li.dataset.worker, li.querySelector('.fill')?.style.width]))
  $('worker-list').replaceChildren(...state.workers.map(w => {
    const p = w.unit?.progress
    const fill = h('div', { class: 'fill' })
    fill.style.width = drawn.get(w.id) || '0%'
    const what = w.unit
      ? [h('span', { class: `kind kind-${w.unit.kind}` }, w.unit.kind), ' ', w.unit.hypothesis ?? (w.unit.kind === 'explore' ? 'free exploration' : `on ${w.unit.campaign}`)]
      : [h('span', { class: 'muted' }, w.banned ? 'banned' : w.online ? 'idle' : 'offline')]
    const facts = p ? `step ${p.step}${p.loss !== null ? ` · loss ${p.loss.toFixed(3)}` : ''}${p.remainingSeconds !== null ? ` · ${Math.round(p.remainingSeconds)} s left at last heartbeat` : ''}`
      : w.unit ? 'starting…' : ''
    return h('li', { class: `worker ${w.online ? 'online' : 'offline'}`, dataset: { worker: w.id } },
      h('div', { class: 'worker-head' },
        h('span', { class: `dot ${w.online ? 'on' : ''}` }),
        h('span', { class: 'name' }, w.name),
        h('span', { class: 'muted' }, ` ${w.contributor ?? ''}`),
        h('span', { class: 'class-tag' }, w.hardwareClass),
        h('span', { class: 'spacer' }),
        h('span', { class: 'muted seen', title: new Date(w.lastSeen).toLocaleString() }),
        h('button', { type: 'button', class: 'small danger admin-only', onclick: () => banWorker(w) }, w.banned ? 'unban' : 'ban')),
      h('div', { class: 'worker-unit' }, ...what),
      w.unit ? h('div', { class: 'bar', role: 'progressbar', 'aria-valuemin': 0, 'aria-valuemax': 100 }, fill, h('span', { class: 'pct' })) : null,
      facts ? h('div', { class: 'muted facts' }, facts) : null)
  }))
  if (!state.workers.length) $('worker-list').append(h('li', { class: 'muted' }, 'No workers yet: contributors run `worker join <url> --token <t>`.'))
  requestAnimationFrame(tickWorkers)
}

/**
 * Once a second: "seen … ago" ages, and each bar moves on between heartbeats (every 5 s) at the
 * pace the last heartbeat's remaining time implies, stopping short of 100 % until the report.
 */
function tickWorkers() {
  const now = serverNow()
  for (const li of $('worker-list').querySelectorAll('[data-worker]')) {
    const w = state.workers.find(x => x.id === li.dataset.worker)
    if (!w) continue
    li.querySelector('.seen').textContent = `seen ${ago(now - w.lastSeen)}`
    const p = w.unit?.progress
    const bar = li.querySelector('.bar')
    if (!bar) continue
    let pct = p ? Math.max(0, Math.min(100, p.percent)) : 0
    if (p && p.remainingSeconds > 0 && w.online) pct = Math.min(99, pct + ((now - w.unit.updatedAt) / 1000) * ((100 - pct) / p.remainingSeconds))
    bar.querySelector('.fill').style.width = `${pct.toFixed(1)}%`
    bar.querySelector('.pct').textContent = `${pct.toFixed(0)}%`
    bar.setAttribute('aria-valuenow', pct.toFixed(0))
  }
}

function experimentFilters() {
  const form = new FormData($('experiment-filters'))
  const f = { campaign: state.campaign, limit: 200 }
  for (const k of ['status', 'kind', 'workerId', 'text']) if (form.get(k)) f[k] = String(form.get(k))
  return f
}

async function loadExperiments() {
  if (!state.campaign) return
  const rows = await api('dashboard.experiments')(experimentFilters())
  $('experiment-rows').replaceChildren(...rows.map(e => h('tr', { class: `clickable row-${e.status}`, dataset: { experiment: e.id }, onclick: () => openDetail(e.id) },
    h('td', { class: 'muted nowrap', title: new Date(e.createdAt).toLocaleString() }, when(e.createdAt)),
    h('td', {}, h('span', { class: `kind kind-${e.kind}` }, e.kind)),
    h('td', {}, badge(e.status), e.reverted ? badge('reverted') : null),
    h('td', { class: 'num mono' }, bpb(e.valBpb)),
    h('td', { class: 'desc' }, e.description, e.hypothesis ? h('div', { class: 'muted small-text' }, `↳ ${e.hypothesis}`) : null),
    h('td', {}, e.contributor ?? '?', h('span', { class: 'muted' }, ` · ${e.worker ?? '?'}`)),
    h('td', { class: 'muted' }, e.hardwareClass),
  )))
  if (!rows.length) $('experiment-rows').append(h('tr', {}, h('td', { colspan: 7, class: 'muted' }, 'No experiments match.')))
}

async function loadHypotheses() {
  if (!state.campaign) return
  const rows = await api('dashboard.hypotheses')({ campaign: state.campaign })
  $('hypothesis-rows').replaceChildren(...rows.map(hy => h('tr', { class: `hyp-${hy.status}`, dataset: { hypothesis: hy.id } },
    h('td', { class: 'num' }, String(hy.priority)),
    h('td', { class: 'desc', title: hy.body || undefined }, hy.title),
    h('td', { class: 'muted' }, hy.source === 'agent' ? `agent · ${hy.author ?? '?'}` : hy.source),
    h('td', {}, badge(hy.status)),
    h('td', { class: 'admin-only nowrap' }, ...hypothesisActions(hy)),
  )))
  if (!rows.length) $('hypothesis-rows').append(h('tr', {}, h('td', { colspan: 5, class: 'muted' }, 'The queue is empty: workers explore freely.')))
}

/** The campaign's program.md and its history; the maintainer edits it here (admin.setProgram). */
async function loadProgram() {
  if (!state.campaign) return
  const { current, history } = await api('dashboard.program')({ campaign: state.campaign })
  $('program-text').textContent = current?.text ?? 'No program.md for this campaign: workers use their own copy. Save one here, or `coordinator program set`.'
  $('program-meta').textContent = current ? `Version ${current.version.slice(0, 10)}: units handed out from now on carry it.` : ''
  const editor = $('program-form').elements.text
  // Never overwrite what the maintainer is typing.
  if (!editor.dataset.dirty) editor.value = current?.text ?? ''
  $('program-history').replaceChildren(...history.map(v => h('li', {}, `${when(v.date)} · ${v.author} · ${v.message} (${v.version.slice(0, 10)})`)))
}

/** Waiting ideas can be reordered or dropped; dropped ones brought back; the rest is history. */
function hypothesisActions(hy) {
  if (hy.status === 'rejected') return [h('button', { type: 'button', class: 'small', onclick: () => changeHypothesis(hy.id, { status: 'open' }) }, 'reopen')]
  if (hy.status !== 'open' && hy.status !== 'in-progress') return []
  return [
    h('button', { type: 'button', class: 'small', title: 'raise priority', 'aria-label': 'raise priority', onclick: () => changeHypothesis(hy.id, { priority: Math.min(100, hy.priority + 1) }) }, '▲'),
    h('button', { type: 'button', class: 'small', title: 'lower priority', 'aria-label': 'lower priority', onclick: () => changeHypothesis(hy.id, { priority: Math.max(-100, hy.priority - 1) }) }, '▼'),
    h('button', { type: 'button', class: 'small danger', onclick: () => changeHypothesis(hy.id, { status: 'rejected' }) }, 'drop'),
  ]
}

async function loadMerges() {
  if (!state.campaign) return
  state.merges = await api('dashboard.merges')({ campaign: state.campaign })
  $('merge-rows').replaceChildren(...state.merges.map(m => h('tr', { class: m.reverted ? 'row-reverted' : '', dataset: { merge: m.id } },
    h('td', { class: 'muted nowrap' }, when(m.experimentAt ?? m.createdAt)),
    h('td', { class: 'desc clickable', onclick: () => openDetail(m.experimentId) }, m.description ?? m.experimentId, h('span', { class: 'muted' }, ` · ${m.contributor ?? '?'}`)),
    h('td', { class: 'num mono' }, signed(m.delta)),
    h('td', { class: 'muted nowrap' }, m.hardwareClass),
    h('td', {}, m.reverted ? badge('reverted') : h('button', { type: 'button', class: 'small danger', onclick: () => revert(m) }, 'revert')),
  )))
  if (!state.merges.length) $('merge-rows').append(h('tr', {}, h('td', { colspan: 5, class: 'muted' }, 'No merges yet.')))
}

/** What reviews.js needs of this page: its safe DOM helpers, formatters and actions. */
const reviewUi = {
  h: (...a) => h(...a), badge: (...a) => badge(...a), bpb: (...a) => bpb(...a), signed: (...a) => signed(...a), short: (...a) => short(...a),
  when: (...a) => when(...a), diffView: (...a) => diffView(...a), openDetail: id => openDetail(id), notice: text => notice(text),
  submitVerdict: (experimentId, verdict, reason) => act('admin.review', { experimentId, verdict, reason },
    r => (r.outcome === 'approved' ? (r.status === 'kept' ? 'Approved and merged.' : `Approved; the candidate is now ${r.status}.`)
      : r.outcome === 'rejected' ? 'Rejected, with your reason on record.' : 'Recorded; another reviewer is still owed.')),
}

async function loadReviews() {
  if (!state.campaign) return
  renderReviews(reviewUi, $('review-list'), await api('dashboard.reviews')({ campaign: state.campaign }))
}

/** The contributor monitor (coordinator/src/dashboard/monitor.ts) and the campaign's hardware classes. */
async function loadContributors() {
  if (!state.campaign) return
  const [rows, classes] = await Promise.all([api('dashboard.contributorMonitor')({ campaign: state.campaign }), api('dashboard.classes')({ campaign: state.campaign })])
  $('monitor-rows').replaceChildren(...rows.map(r => h('tr', { class: r.flagged ? 'flagged' : '', dataset: { contributor: r.name } },
    h('td', {}, r.name),
    h('td', { class: 'num' }, String(r.compared)),
    h('td', { class: 'num' }, String(r.disagreements)),
    h('td', { class: 'num' }, String(r.claimDisagreements)),
    h('td', { class: 'num mono' }, `${r.meanDifferenceSigma >= 0 ? '+' : ''}${r.meanDifferenceSigma.toFixed(1)}σ`),
    h('td', {}, r.flagged ? badge('flagged') : badge('ok'), r.suspect ? badge('suspect') : null, r.note ? h('span', { class: 'muted' }, ` ${r.note}`) : null),
  )))
  if (!rows.length) $('monitor-rows').append(h('tr', {}, h('td', { colspan: 6, class: 'muted' }, 'No runs to compare yet.')))
  $('class-rows').replaceChildren(...classes.map(c => h('tr', { dataset: { class: c.hardwareClass } },
    h('td', { class: 'mono' }, c.hardwareClass),
    h('td', {}, c.approved ? `yes (${c.by})` : 'no: held'),
    h('td', { class: 'num' }, String(c.activeContributors)),
    h('td', { class: 'muted' }, c.note ?? ''),
    h('td', { class: 'admin-only nowrap' },
      c.approved && c.by !== 'maintainer' ? null : h('button', { type: 'button', class: 'small', onclick: () => act('admin.approveClass', { campaign: state.campaign, hardwareClass: c.hardwareClass, approved: !c.approved }, () => `${c.approved ? 'Withdrew approval of' : 'Approved'} ${c.hardwareClass}.`) }, c.approved ? 'withdraw' : 'approve'),
      h('button', { type: 'button', class: 'small', onclick: () => act('admin.setClassSelfVerification', { campaign: state.campaign, hardwareClass: c.hardwareClass, allow: !c.allowSelfVerification }, () => `Self-verification ${c.allowSelfVerification ? 'off' : 'on'} for ${c.hardwareClass}.`) }, c.allowSelfVerification ? 'no self-verification' : 'allow self-verification')),
  )))
  if (!classes.length) $('class-rows').append(h('tr', {}, h('td', { colspan: 5, class: 'muted' }, 'Nothing measured yet.')))
}

// ---------------------------------------------------------------------------------------------
// Experiment detail, in a dialog.

async function openDetail(id) {
  state.detail = id
  history.replaceState(null, '', `${location.pathname}${location.search}#experiment=${encodeURIComponent(id)}`)
  await loadDetail()
  if (!$('detail').open) $('detail').showModal()
}

async function loadDetail() {
  if (!state.detail) return
  const e = await api('dashboard.experimentDetail')({ id: state.detail })
  if (!e) {
    $('detail-body').replaceChildren(h('p', {}, 'No such experiment.'))
    return
  }
  const kv = (pairs) => h('dl', { class: 'kv' }, ...pairs.filter(([, v]) => v !== null && v !== undefined && v !== '').flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]))
  const number = v => (typeof v === 'number' ? String(Number(v.toFixed(6))) : JSON.stringify(v))
  const metrics = e.metrics ? Object.entries(e.metrics).map(([k, v]) => [k, number(v)]) : []
  const samples = (title, list) => h('div', { class: 'samples' },
    h('h4', {}, title, list.length ? h('span', { class: 'muted' }, ` · mean ${bpb(list.reduce((s, m) => s + m.valBpb, 0) / list.length, 6)} of ${list.length}`) : null),
    list.length ? h('table', {}, h('tbody', {}, ...list.map(m => h('tr', { class: m.experimentId === e.id ? 'this' : '' },
      h('td', { class: 'mono num' }, bpb(m.valBpb, 6)), h('td', {}, m.kind ?? ''), h('td', {}, m.worker ?? '?'),
      h('td', { class: 'muted' }, m.experimentId === e.id ? 'this run' : when(m.createdAt)))))) : h('p', { class: 'muted' }, 'none yet'))
  const merge = e.merge
  fill($('detail-body'),
    h('h2', {}, e.description),
    h('p', {}, badge(e.status), merge?.reverted ? badge('reverted') : null, ' ', h('span', { class: `kind kind-${e.kind}` }, e.kind), ' ', h('span', { class: 'decision' }, e.decision)),
    h('div', { class: 'detail-grid' },
      kv([
        ['val_bpb', bpb(e.valBpb, 6)], ['contributor', e.contributor], ['worker', e.worker], ['class', e.hardwareClass],
        ['hypothesis', e.hypothesis?.title], ['agent', e.unit?.agent], ['program.md', e.unit?.programVersion ? short(e.unit.programVersion) : null],
        ['commit', short(e.commit)], ['parent', short(e.parentCommit)],
        ['when', new Date(e.createdAt).toLocaleString()], ['id', e.id],
        ['σ of the class', e.noise ? `${e.noise.sigma.toFixed(5)} (${e.noise.source}, ${e.noise.degreesOfFreedom} repeats)` : null],
      ]),
      kv(metrics)),
    merge ? h('div', { class: 'merge-box' },
      h('h4', {}, merge.reverted ? 'Merged, then reverted' : 'Merged'),
      kv([['before', bpb(merge.valBefore, 6)], ['after', bpb(merge.valAfter, 6)], ['Δ', signed(merge.delta, 6)], ['σ', merge.sigma === null ? null : merge.sigma.toFixed(5)],
        ['verified by', Array.isArray(merge.verifiers) && merge.verifiers.length ? merge.verifiers.join(', ') : null]]),
      merge.reverted ? null : h('button', { type: 'button', class: 'danger admin-only', onclick: () => revert(state.merges.find(m => m.id === merge.id) ?? merge) }, 'Revert this merge')) : null,
    e.review ? h('div', { class: 'review-box' },
      h('h4', {}, `Review (${e.review.mode}${e.review.requested !== e.review.mode ? `, asked ${e.review.requested}` : ''}): `, badge(e.review.state, e.review.state === 'approved' ? 'kept' : e.review.state)),
      e.review.warning ? h('p', { class: 'banner-inline' }, e.review.warning) : null,
      agentBox(reviewUi, e.review), maintainerBox(reviewUi, e.review)) : null,
    h('div', { class: 'samples-row' },
      samples(e.measuredCommit === e.commit ? 'Samples of this commit' : `Samples of ${short(e.measuredCommit)}`, e.samples.measured),
      e.samples.parent.length || e.kind === 'explore' || e.kind === 'rebase' ? samples(`Samples of the parent ${short(e.parentCommit)}`, e.samples.parent) : null),
    h('h4', {}, 'Diff'),
    diffView(e.diff),
    e.agentNotes ? [h('h4', {}, 'Agent notes'), h('pre', { class: 'notes' }, e.agentNotes)] : null,
    h('h4', {}, 'Log tail'),
    h('pre', { class: 'log' }, e.logTailHidden ? '(only its author and the maintainer can read the log)' : e.logTail || '(empty)'),
  )
}

function diffView(diff) {
  if (!diff) return h('p', { class: 'muted' }, 'No change: the parent’s code as given.')
  return h('pre', { class: 'diff' }, ...diff.split('\n').map(line => {
    const cls = line.startsWith('+++') || line.startsWith('---') ? 'meta' : line.startsWith('+') ? 'add' : line.startsWith('-') ? 'del' : line.startsWith('@@') ? 'hunk' : ''
    return h('span', { class: cls }, `${line}\n`)
  }))
}

// ---------------------------------------------------------------------------------------------
// The maintainer's actions. The server decides: without the admin token every one is refused,
// and the refusal is shown.

/** The outcome of an action, in a toast that stays for a while wherever the button was. */
let noticeTimer = null
function notice(text, ok = false) {
  const el = $('notice')
  // A modal dialog covers the page: show the toast inside it while it is open.
  ;($('detail').open ? $('detail') : document.body).append(el)
  el.textContent = text
  el.className = `notice ${ok ? 'ok' : 'error'}`
  el.hidden = false
  clearTimeout(noticeTimer)
  noticeTimer = setTimeout(() => { el.hidden = true }, 8000)
}

async function act(path, input, done) {
  try {
    const result = await mutate(path, input, state.token)
    notice(done(result), true)
    refreshAll()
    return result
  } catch (err) {
    notice(err instanceof ApiError ? `Refused: ${err.message}` : `Failed: ${err.message}`)
    return null
  }
}

function revokeTokens(contributor) {
  if (!confirm(`Revoke every token of “${contributor}”? Their workers stop being accepted at once.`)) return
  act('admin.revokeTokens', { contributor }, r => `Revoked ${r.revoked} token(s) of ${contributor}.`)
}

function banWorker(w) {
  if (!w.banned && !confirm(`Ban worker “${w.name}” of ${w.contributor ?? '?'}?`)) return
  act('admin.banWorker', { workerId: w.id, banned: !w.banned }, () => `${w.banned ? 'Unbanned' : 'Banned'} worker ${w.name}.`)
}

function revert(m) {
  const later = state.merges.filter(x => !x.reverted && x.createdAt > m.createdAt).length
  const also = later ? `\n\nThe ${later} merge(s) made after it were measured against it and are reverted too.` : ''
  if (!confirm(`Revert the merge of “${m.description ?? m.experimentId}”? A new commit on the branch restores the code from before it.${also}`)) return
  act(REVERT_MERGE, { mergeId: m.id }, r => `Reverted ${r.reverted.length} merge(s): the best is now ${short(r.commit)}.`)
}

function changeHypothesis(id, change) {
  act(UPDATE_HYPOTHESIS, { id, ...change }, () => 'Hypothesis updated.')
}

async function checkToken() {
  if (!state.token) {
    state.admin = false
  } else {
    try {
      state.admin = (await api('dashboard.whoami')()).admin
    } catch {
      state.admin = false
    }
  }
  document.body.classList.toggle('admin', state.admin)
  $('admin-state').textContent = state.admin ? 'Admin mode: the maintainer’s controls are shown on every section.'
    : state.token ? 'This token is not the admin token: actions will be refused.' : 'Read-only. Paste the admin token (`coordinator token admin`) to manage this coordinator; it stays in this browser.'
}

function wireForms() {
  $('admin-open').addEventListener('click', () => {
    $('admin').scrollIntoView({ behavior: 'smooth' })
    $('token-form').elements.token.focus()
  })
  $('token-form').addEventListener('submit', async ev => {
    ev.preventDefault()
    state.token = $('token-form').elements.token.value.trim()
    localStorage.setItem(TOKEN_KEY, state.token)
    $('token-form').reset()
    await checkToken()
  })
  $('token-forget').addEventListener('click', async () => {
    state.token = ''
    localStorage.removeItem(TOKEN_KEY)
    await checkToken()
  })
  $('campaign-pause').addEventListener('click', () => act('admin.pause', { campaign: state.campaign }, () => `Paused ${state.campaign}: no new work is handed out.`))
  $('campaign-resume').addEventListener('click', () => act('admin.resume', { campaign: state.campaign }, () => `Resumed ${state.campaign}.`))
  $('review-form').addEventListener('submit', ev => {
    ev.preventDefault()
    const review = $('review-form').elements.review.value
    act('admin.setReview', { campaign: state.campaign, review }, r => `Review of ${state.campaign}: ${review}${r.warning ? ` (${r.warning})` : ''}.`)
  })
  $('revoke-form').addEventListener('submit', ev => {
    ev.preventDefault()
    const name = $('revoke-form').elements.contributor.value.trim()
    if (name) revokeTokens(name)
  })
  $('hypothesis-add').addEventListener('submit', async ev => {
    ev.preventDefault()
    const f = new FormData($('hypothesis-add'))
    const r = await act('admin.addHypothesis', { campaign: state.campaign, title: String(f.get('title')), body: String(f.get('body') ?? ''), priority: Number(f.get('priority') || 0) },
      r => (r.duplicateOf ? 'Added, but it repeats an idea already in the queue (marked duplicate).' : 'Hypothesis added.'))
    if (r) $('hypothesis-add').reset()
  })
  const editor = $('program-form').elements.text
  editor.addEventListener('input', () => { editor.dataset.dirty = '1' })
  $('program-form').addEventListener('submit', async ev => {
    ev.preventDefault()
    const f = new FormData($('program-form'))
    const r = await act('admin.setProgram', { campaign: state.campaign, text: String(f.get('text')), message: String(f.get('message') || 'program.md edited in the dashboard') },
      p => `Saved program.md (version ${p.version.slice(0, 10)}): the next units carry it.`)
    if (r) { delete editor.dataset.dirty; $('program-form').elements.message.value = '' }
  })
  const filters = $('experiment-filters')
  filters.elements.status.append(...STATUSES.map(s => h('option', { value: s }, s)))
  filters.elements.kind.append(...KINDS.map(k => h('option', { value: k }, k)))
  let typing = null
  filters.addEventListener('input', () => {
    clearTimeout(typing)
    typing = setTimeout(() => invalidate('experiments'), 250)
  })
  filters.addEventListener('submit', ev => ev.preventDefault())
  $('campaign').addEventListener('change', () => {
    state.campaign = $('campaign').value
    history.replaceState(null, '', `?campaign=${encodeURIComponent(state.campaign)}`)
    chart?.update([], serverNow())
    listen()
    refreshAll()
  })
  $('detail').addEventListener('close', () => {
    state.detail = null
    history.replaceState(null, '', `${location.pathname}${location.search}`)
  })
}

// ---------------------------------------------------------------------------------------------
// Live updates: an event marks sections stale; stale sections are re-read together, 100 ms after the first.

const loaders = {
  campaigns: loadCampaigns, summary: loadSummary, curve: loadCurve, leaderboard: loadLeaderboard, workers: loadWorkers,
  experiments: loadExperiments, hypotheses: loadHypotheses, merges: loadMerges, detail: loadDetail, reviews: loadReviews, program: loadProgram, contributors: loadContributors,
}
const ALL = Object.keys(loaders)
const AFFECTS = {
  experiment: ['summary', 'curve', 'leaderboard', 'experiments', 'workers', 'hypotheses', 'merges', 'detail', 'reviews', 'contributors'],
  'best-changed': ['summary', 'curve', 'leaderboard', 'experiments', 'merges', 'detail', 'reviews'],
  review: ['reviews', 'experiments', 'detail'],
  progress: ['workers'],
  workers: ['workers', 'summary'],
  campaign: ['campaigns', 'summary', 'reviews', 'program'],
  queue: ['hypotheses', 'workers', 'summary'],
}

const stale = new Set()
// biome-ignore lint/correctness/noUnusedVariables: read by `??=` in invalidate(), which Biome does not count
let flushTimer = null
let flushing = null

function invalidate(...sections) {
  for (const s of sections) stale.add(s)
  flushTimer ??= setTimeout(flush, 100)
}

async function flush() {
  await flushing
  flushTimer = null
  const sections = [...stale]
  stale.clear()
  // campaigns first: it settles which campaign the others read.
  if (sections.includes('campaigns')) await loadCampaigns().catch(report)
  flushing = Promise.all(sections.filter(s => s !== 'campaigns').map(s => loaders[s]().catch(report)))
  await flushing
}

function refreshAll() {
  invalidate(...ALL)
}

function report(err) {
  console.error(err)
}

let unsubscribe = null
function listen() {
  unsubscribe?.()
  unsubscribe = subscribe('dashboard.live', { campaign: state.campaign }, {
    onData: e => invalidate(...(AFFECTS[e.type] ?? ALL)),
    onState: s => {
      $('live').textContent = s === 'live' ? 'live' : 'reconnecting…'
      $('live').classList.toggle('on', s === 'live')
      // Coming back after a gap: events may have been missed, so read everything again.
      if (s === 'live') refreshAll()
    },
  })
}

async function main() {
  wireForms()
  await checkToken()
  await loadCampaigns().catch(report)
  if (!state.campaign) $('chart-caption').textContent = 'No campaigns yet: `coordinator campaign create NAME`.'
  listen()
  refreshAll()
  const hash = /^#experiment=(.+)$/.exec(location.hash)
  if (hash) openDetail(decodeURIComponent(hash[1]))
  // "Seen 5 s ago" ages by itself; who is online is re-read now and then even with no events.
  setInterval(tickWorkers, 1000)
  setInterval(() => invalidate('workers', 'summary'), 15_000)
}

main()

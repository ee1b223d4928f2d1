// The review queue (docs/RATCHET.md, "The review gate"): candidates the ratchet accepted that
// wait for a verdict, each with the evidence, the agent's review and the diff, and the
// maintainer's approve / reject form. The page's own helpers come in `ui` (app.js), so strangers'
// text reaches the page only through its h() (textContent), as everywhere else.

const WHO = { agent: 'the review agent', maintainer: 'the maintainer' }

/** The agent's part of a review: its verdict with reasons and line concerns, its failure, or that it is still owed. */
export function agentBox(ui, r) {
  const { h, badge, when } = ui
  const a = r.agent
  if (a.verdict) {
    return h('div', { class: `agent-review verdict-${a.verdict}` },
      h('h4', {}, 'Agent review ', badge(a.verdict === 'approve' ? 'approved' : 'rejected', a.verdict === 'approve' ? 'kept' : 'rejected'), h('span', { class: 'muted' }, ` ${a.model ?? ''}`)),
      h('p', { class: 'reason' }, a.reason ?? ''),
      a.concerns?.length ? h('ul', { class: 'concerns' }, ...a.concerns.map(c => h('li', { class: `concern-${c.severity ?? 'blocking'}` },
        h('span', { class: 'mono' }, `${c.file ?? ''}${c.file ? ':' : 'line '}${c.line}`), ` ${c.severity ?? 'blocking'}: `, c.text))) : null)
  }
  if (!r.waitingOn.includes('agent')) return null
  if (a.failures) {
    return h('div', { class: 'agent-review agent-failed' },
      h('h4', {}, 'Agent review failed ', badge(`${a.failures}×`, 'rejected')),
      h('p', { class: 'reason' }, a.error ?? ''),
      h('p', { class: 'muted' }, `Nothing merges until a reviewer answers. Next try ${a.nextAt ? when(a.nextAt) : 'soon'}; you may decide instead.`))
  }
  return h('div', { class: 'agent-review' }, h('p', { class: 'muted' }, 'Waiting for the review agent…'))
}

/** The maintainer's verdict, if given. */
export function maintainerBox(ui, r) {
  const { h, badge } = ui
  if (!r.maintainer.verdict) return null
  return h('div', { class: `maintainer-review verdict-${r.maintainer.verdict}` },
    h('h4', {}, 'Maintainer review ', badge(r.maintainer.verdict === 'approve' ? 'approved' : 'rejected', r.maintainer.verdict === 'approve' ? 'kept' : 'rejected')),
    h('p', { class: 'reason' }, r.maintainer.reason ?? ''))
}

/** The ratchet's numbers behind the candidate: what the maintainer weighs the diff against. */
function evidence(ui, item) {
  const { h, bpb, signed } = ui
  const e = item.evidence
  return h('dl', { class: 'kv' },
    h('dt', {}, 'val_bpb'), h('dd', {}, `${bpb(e.candidateMean, 6)} (n=${e.nC}) vs parent ${bpb(e.parentMean, 6)} (n=${e.nP})`),
    h('dt', {}, 'Δ'), h('dd', {}, `${signed(e.delta, 6)} (threshold ${bpb(e.threshold, 6)})`),
    h('dt', {}, 'σ'), h('dd', {}, bpb(e.sigma, 6)),
    h('dt', {}, 'samples'), h('dd', {}, item.samples.map(v => bpb(v, 4)).join(', ')),
    h('dt', {}, 'verifiers'), h('dd', {}, String(item.verifiers)))
}

/** The approve / reject form: a reason is required either way, and checked before anything is sent. */
function verdictForm(ui, item) {
  const { h } = ui
  const form = h('form', { class: 'verdict-form admin-only stack', novalidate: true },
    h('textarea', { name: 'reason', rows: 2, maxlength: 2000, placeholder: 'why you approve or reject it (required; recorded in the merge or the rejection)', 'aria-label': 'review reason' }),
    h('span', { class: 'row' },
      h('button', { type: 'submit', name: 'verdict', value: 'approve' }, 'Approve and merge'),
      h('button', { type: 'submit', name: 'verdict', value: 'reject', class: 'danger' }, 'Reject')))
  form.addEventListener('submit', ev => {
    ev.preventDefault()
    const reason = form.elements.reason.value.trim()
    const verdict = ev.submitter?.value === 'reject' ? 'reject' : 'approve'
    if (reason.length < 3) return ui.notice('A review needs a reason: say why you approve or reject it.')
    ui.submitVerdict(item.experimentId, verdict, reason)
  })
  return form
}

function pendingItem(ui, item) {
  const { h, badge, short } = ui
  const x = item.experiment
  const on = item.waitingOn.map(r => WHO[r]).join(' and ')
  return h('article', { class: 'review-item', dataset: { review: item.experimentId } },
    h('h3', { class: 'review-title clickable', onclick: () => ui.openDetail(x.id) }, x.description),
    h('p', {}, badge('awaiting-review'), ` ${item.mode}`, on ? ` · waiting for ${on}` : '',
      h('span', { class: 'muted' }, ` · ${x.contributor ?? '?'} · ${x.worker ?? '?'} · ${x.hardwareClass} · ${short(x.commit)} on ${short(x.parentCommit)}`)),
    item.warning ? h('p', { class: 'banner-inline' }, item.warning) : null,
    item.parentIsBest ? null : h('p', { class: 'muted' }, 'The best moved on since its parent: it will be merged onto the new best and judged again.'),
    h('div', { class: 'review-grid' }, evidence(ui, item), h('div', {}, agentBox(ui, item), maintainerBox(ui, item))),
    h('details', { class: 'review-diff', open: true }, h('summary', {}, 'Diff against the parent'), ui.diffView(x.diff)),
    verdictForm(ui, item))
}

function decidedRow(ui, item) {
  const { h, badge, when } = ui
  const by = [item.agent.verdict ? `${item.agent.model} (agent): ${item.agent.verdict}` : null,
    item.maintainer.verdict ? `maintainer: ${item.maintainer.verdict}` : null].filter(Boolean).join(' · ') || (item.state === 'approved' ? 'nobody (review none)' : '')
  return h('tr', { dataset: { review: item.experimentId } },
    h('td', { class: 'muted nowrap' }, when(item.decidedAt ?? item.createdAt)),
    h('td', { class: 'desc clickable', onclick: () => ui.openDetail(item.experimentId) }, item.experiment.description),
    h('td', {}, badge(item.state, item.state === 'approved' ? 'kept' : item.state)),
    h('td', { class: 'desc' }, by, h('div', { class: 'muted' }, item.maintainer.reason ?? item.agent.reason ?? item.warning ?? '')))
}

/** Fills the queue's section from dashboard.reviews. */
export function renderReviews(ui, el, queue) {
  const { h } = ui
  if (!queue) return el.replaceChildren()
  const pending = queue.pending.length
    ? queue.pending.map(item => pendingItem(ui, item))
    : [h('p', { class: 'muted' }, queue.review.mode === 'none' ? 'This campaign merges without review.' : 'Nothing awaits review.')]
  const decided = queue.decided.length
    ? [h('h3', {}, 'Decided'), h('table', {}, h('tbody', {}, ...queue.decided.map(item => decidedRow(ui, item))))]
    : []
  el.replaceChildren(...pending, ...decided)
}

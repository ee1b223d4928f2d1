// The val_bpb progress chart, drawn by uPlot (served from node_modules at /vendor/uplot/).
// Input: dashboard.curve, one entry per hardware class: { hardwareClass, points, best, noise }.
// Each class gets seven uPlot series that share one time axis: four kinds of dots (kept, tried,
// measured, reverted), the running best as a step line, and the ± σ band around it (two invisible
// series filled between). uPlot wants one x array for all series, so every series is null except
// at its own points.
import uPlot from '/vendor/uplot/uPlot.esm.js'

export const CLASS_COLORS = ['#2563eb', '#d97706', '#059669', '#7c3aed', '#db2777', '#0891b2']
const REVERTED = '#dc2626'
const HEIGHT = 340

const alpha = (hex, a) => hex + Math.round(a * 255).toString(16).padStart(2, '0')
const dots = (color, size, fill, width = 1.5) => ({ stroke: color, width: 0, paths: () => null, points: { show: true, size, fill, stroke: color, width } })

/** Where the running best stands at time t (null before the class's first baseline). */
function bestAt(best, t) {
  let v = null
  for (const b of best) if (b.t <= t) v = b.valBpb
  return v
}

export class ProgressChart {
  /** onPick(experimentId) is called when a dot is clicked. */
  constructor(el, tip, onPick) {
    this.el = el
    this.tip = tip
    this.onPick = onPick
    this.plot = null
    this.points = []
    this.key = ''
    this.hover = null
    new ResizeObserver(() => this.plot?.setSize({ width: this.el.clientWidth, height: HEIGHT })).observe(el)
  }

  /** curves: dashboard.curve; now: the server's clock (ms), where the best line ends. */
  update(curves, now) {
    const xs = new Set([now])
    for (const c of curves) for (const p of c.points) xs.add(p.t)
    const x = [...xs].sort((a, b) => a - b)
    const at = new Map(x.map((t, i) => [t, i]))
    const series = [{}]
    const data = [x.map(t => t / 1000)]
    const bands = []
    this.points = []
    curves.forEach((c, k) => {
      const color = CLASS_COLORS[k % CLASS_COLORS.length]
      const column = group => {
        const col = new Array(x.length).fill(null)
        for (const p of c.points) if (p.group === group) col[at.get(p.t)] = p.valBpb
        return col
      }
      const sigma = c.noise.sigma
      const line = x.map(t => bestAt(c.best, t))
      const base = series.length
      series.push(
        { label: `${c.hardwareClass} ± σ`, stroke: 'transparent', width: 0, points: { show: false }, paths: uPlot.paths.stepped({ align: 1 }) },
        { label: `${c.hardwareClass} − σ`, stroke: 'transparent', width: 0, points: { show: false }, paths: uPlot.paths.stepped({ align: 1 }) },
        { label: `${c.hardwareClass} measured`, ...dots(alpha(color, 0.55), 5, alpha(color, 0.35), 1) },
        { label: `${c.hardwareClass} tried`, ...dots(color, 7, '#ffffff') },
        { label: `${c.hardwareClass} reverted`, ...dots(REVERTED, 8, '#ffffff', 2) },
        { label: `${c.hardwareClass} best`, stroke: color, width: 2, points: { show: false }, paths: uPlot.paths.stepped({ align: 1 }) },
        { label: `${c.hardwareClass} kept`, ...dots('#ffffff', 11, color, 2) },
      )
      data.push(line.map(v => (v === null ? null : v + sigma)), line.map(v => (v === null ? null : v - sigma)),
        column('measured'), column('tried'), column('reverted'), line, column('kept'))
      bands.push({ series: [base, base + 1], fill: alpha(color, 0.12) })
      for (const p of c.points) this.points.push({ ...p, hardwareClass: c.hardwareClass, color })
    })

    this.values = this.points.map(p => p.valBpb).sort((a, b) => a - b)
    this.curves = curves
    const key = curves.map(c => c.hardwareClass).join('|')
    if (this.plot && key === this.key) return this.plot.setData(data)
    this.key = key
    this.plot?.destroy()
    this.plot = new uPlot({
      width: this.el.clientWidth || 800,
      height: HEIGHT,
      series,
      bands,
      legend: { show: false },
      cursor: { x: false, y: false, points: { show: false }, drag: { x: true, y: false, setScale: true } },
      scales: { x: { time: true }, y: { range: (_u, min, max) => yRange(this.values, this.curves, min, max) } },
      axes: [
        { stroke: '#64748b', grid: { stroke: '#eef2f7' }, ticks: { stroke: '#e2e8f0' } },
        { stroke: '#64748b', grid: { stroke: '#eef2f7' }, ticks: { stroke: '#e2e8f0' }, size: 64, label: 'val_bpb  (lower is better)', labelSize: 20,
          values: (_u, ticks) => ticks.map(v => v.toFixed(3)) },
      ],
      hooks: { setCursor: [u => this.showNearest(u)] },
    }, data, this.el)
    this.plot.over.addEventListener('click', () => { if (this.hover) this.onPick(this.hover.id) })
    this.plot.over.addEventListener('mouseleave', () => { this.tip.hidden = true })
  }

  /** The dot under the mouse (within 10 px), as a tooltip; uPlot's own cursor only knows the x index. */
  showNearest(u) {
    const { left, top } = u.cursor
    this.hover = null
    if (left == null || left < 0) {
      this.tip.hidden = true
      return
    }
    let best = 100
    for (const p of this.points) {
      const dx = u.valToPos(p.t / 1000, 'x') - left
      const dy = u.valToPos(p.valBpb, 'y') - top
      const d = dx * dx + dy * dy
      if (d < best) {
        best = d
        this.hover = p
      }
    }
    u.over.style.cursor = this.hover ? 'pointer' : 'default'
    if (!this.hover) {
      this.tip.hidden = true
      return
    }
    const p = this.hover
    this.tip.replaceChildren()
    const line = (text, cls) => {
      const div = document.createElement('div')
      div.textContent = text
      if (cls) div.className = cls
      this.tip.append(div)
    }
    line(`${p.valBpb.toFixed(6)}  ·  ${p.status}  ·  ${p.kind}`, 'tip-head')
    line(p.description)
    line(`${p.contributor ?? '?'} · ${p.hardwareClass} · ${new Date(p.t).toLocaleString()}`, 'muted')
    this.tip.hidden = false
    const x = u.valToPos(p.t / 1000, 'x') + u.over.offsetLeft
    const y = u.valToPos(p.valBpb, 'y') + u.over.offsetTop
    this.tip.style.left = `${Math.min(x + 12, this.el.clientWidth - 280)}px`
    this.tip.style.top = `${y + 12}px`
  }
}

/**
 * The y range: every dot of interest, but a diverged run (val_bpb far above the rest) is left
 * off the top rather than squashing the curve into a line.
 */
function yRange(values, curves, min, max) {
  if (!values.length) return [min ?? 0, max ?? 1]
  const q = f => values[Math.min(values.length - 1, Math.floor(f * (values.length - 1)))]
  let lo = values[0]
  let hi = Math.min(values[values.length - 1], q(0.9) + (q(0.9) - lo) * 0.5)
  for (const c of curves) {
    for (const b of c.best) {
      lo = Math.min(lo, b.valBpb - 1.5 * c.noise.sigma)
      hi = Math.max(hi, b.valBpb + 1.5 * c.noise.sigma)
    }
  }
  const pad = Math.max((hi - lo) * 0.08, 1e-4)
  return [lo - pad, hi + pad]
}

/**
 * The GPU duty cycle in issue 17's honest definition — budgeted training seconds (the worker's
 * clock, go to saved weights) over wall seconds with work in hand — as the worker itself reports
 * it, with a model-changing edit in every experiment: the real `worker solo` loop (sandbox, worker's
 * clock, trusted evaluation, GPU lane), an agent that changes the model's shape each time (a new
 * graph: a cold compile), the real trainer.
 *
 *   BUDGET=60 EXPERIMENTS=4 node dist/bench-duty-gpu.mjs        # on a GPU box, from the bench bundle
 *   AUTORESEARCH_PYTHON=/usr/bin/python3 BUDGET=5 EXPERIMENTS=2 npx tsx bench/duty-cycle/gpu.ts   # CPU smoke run
 * Settings: BUDGET (s), EXPERIMENTS (after the baseline), PIPELINE (1: the lane, 0: one run at a
 * time), TRAINER (the trainer folder), WORK (scratch folder). Prints one JSON line per experiment
 * and a summary line `duty: {...}`.
 */
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { emptyUsage, type Agent, type AgentTask } from '../../worker/src/agent/agent.ts'
import { runSolo } from '../../worker/src/solo/loop.ts'

const budget = Number(process.env.BUDGET ?? 60)
const experiments = Number(process.env.EXPERIMENTS ?? 4)
const pipeline = process.env.PIPELINE !== '0'
const trainerDir = process.env.TRAINER ?? join(process.cwd(), 'trainer')
const work = process.env.WORK ?? await mkdtemp(join(tmpdir(), 'arg-duty-gpu-'))

/** Each edit changes the model's graph (shape or a constant inside it): no compile cache helps. */
const EDITS: Array<[RegExp, (old: string) => string, string]> = [
  [/^MLP_RATIO = (\d+)/m, v => `MLP_RATIO = ${Number(v) === 4 ? 3 : 4}`, 'MLP ratio'],
  [/^LOGIT_SOFTCAP = ([\d.]+)/m, v => `LOGIT_SOFTCAP = ${(Number(v) + 0.5).toFixed(1)}`, 'logit soft-cap'],
  [/^DEPTH = (\d+)/m, v => `DEPTH = ${Number(v) === 8 ? 9 : 8}`, 'depth'],
]
/** The cpu-tiny profile's shape, changed too, so a CPU smoke run also changes its model. */
const TINY: [RegExp, (old: string) => string] = [/^TINY_MODEL_DIM = (\d+)/m, v => `TINY_MODEL_DIM = ${Number(v) === 128 ? 192 : 128}`]

const edit = (source: string, [pattern, next]: [RegExp, (old: string) => string, ...unknown[]]) =>
  source.replace(pattern, (match, v: string) => `${next(v)}${match.slice(match.indexOf(v) + v.length)}`)

/** An agent that answers at once with the next model-changing edit of the parent. */
function shapeShifter(): Agent {
  let n = 0
  return {
    label: 'bench:model-changing',
    begin(task: AgentTask) {
      const i = n++
      return {
        async propose() {
          const source = edit(edit(task.files['train.py'], EDITS[i % EDITS.length]), TINY)
          return { files: { ...task.files, 'train.py': source }, description: `change the ${EDITS[i % EDITS.length][2]} (${i})`, rationale: 'duty-cycle bench', followUps: [] }
        },
        async repair() { return null },
        usage: () => emptyUsage('bench:model-changing'),
      }
    },
  }
}

const runs: Array<Record<string, unknown>> = []
const started = performance.now()
const summary = await runSolo({
  dir: join(work, 'repo'), tag: 'duty', trainerDir, budgetSeconds: budget, experiments, agent: shapeShifter(), pipeline,
  log: line => {
    console.error(`  ${line}`)
    const m = /GPU duty cycle (\d+)% \((\d+)s of (\d+)s\)/.exec(line)
    if (m) runs.push({ at: Math.round((performance.now() - started) / 100) / 10, duty: Number(m[1]), training: Number(m[2]), held: Number(m[3]), line: line.slice(0, 160) })
  },
})
for (const r of runs) console.log(JSON.stringify(r))
console.log(`duty: ${JSON.stringify({ budget, planned: experiments, pipeline, ...summary, wall: Math.round((performance.now() - started) / 100) / 10 })}`)

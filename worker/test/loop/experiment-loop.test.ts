import t, { type Test } from 'tap'
import childProcess from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { syncBuiltinESMExports } from 'node:module'
import type { Report, WorkUnit } from '@autoresearch-grid/shared'
import { emptyUsage, type Agent, type AgentTask, type Failure, type Proposal } from '../../src/agent/agent.ts'
import { DepthGauge, LaneDepth } from '../../src/loop/depth.ts'
import { DutyCycle } from '../../src/loop/duty-cycle.ts'
import { runExperimentLoop, type ResultSink, type UnitSource } from '../../src/loop/experiment-loop.ts'
import type { ExperimentContext, Prepared } from '../../src/loop/experiment.ts'
import { HeldUnits } from '../../src/loop/held.ts'
import { IdleBackoff } from '../../src/loop/idle-backoff.ts'
import type { Measurement, MeasureOptions } from '../../src/runner/measure.ts'
import type { ProgressSink } from '../../src/ui/progress.ts'
import type { Workspace } from '../../src/workspace/git.ts'

// The experiment loop that `worker join` and `worker solo` share, run whole with stand-ins for
// everything that would start a process: the agent, the safety check, the workspaces and the
// measuring function. Spawning a process is made to throw for the length of this file, so a
// stand-in that went missing shows up as a failure rather than a slow test.
const realSpawn = childProcess.spawn
childProcess.spawn = (() => { throw new Error('the experiment loop started a process') }) as typeof childProcess.spawn
syncBuiltinESMExports()
t.teardown(() => {
  childProcess.spawn = realSpawn
  syncBuiltinESMExports()
})

const PARENT = 'LR = 0\n'

function unit(id: string, kind: WorkUnit['kind'] = 'explore'): WorkUnit {
  return {
    id, kind, campaign: 'demo', profile: 'cpu-tiny', budgetSeconds: 2, leaseToken: `lease-${id}`, leaseExpiresAt: 0,
    parentCommit: 'p'.repeat(40), source: { 'train.py': PARENT }, editableFiles: ['train.py'], hypothesis: null, referenceDiff: null, triedOnParent: [],
  }
}

/** A git workspace kept in memory: the parent, then each candidate. */
class MemoryWorkspace implements Workspace {
  private commits: Record<string, string>[] = []
  constructor(readonly dir: string) {}
  async startFrom(_parent: string, files: Record<string, string>) { this.commits = [{ ...files }]; return 'c0' }
  async commitCandidate(files: Record<string, string>) { this.commits.push({ ...this.commits[0], ...files }); return `c${this.commits.length - 1}` }
  async diff() { const last = this.commits.at(-1)!['train.py']; return last === this.commits[0]['train.py'] ? '' : `-${this.commits[0]['train.py']}+${last}` }
  async linesDelta() { return 0 }
  async parent() { return 'c0' }
  async editableFiles() { return Object.keys(this.commits[0] ?? {}) }
}

class Workspaces {
  opened = 0
  out = 0
  async acquire() { this.opened++; this.out++; return new MemoryWorkspace(`/nowhere/${this.opened}`) }
  release() { this.out-- }
}

/**
 * An agent that writes `LR = <n>` for the unit it is given; a train.py with `CRASH` or `import os`
 * in it comes from the unit's hypothesis title, so a test says what the first candidate is. A
 * repair always writes a good candidate.
 */
class ScriptedAgent implements Agent {
  readonly label = 'scripted'
  proposals: string[] = []
  repairs: Failure[] = []
  constructor(private readonly delay: (unitId: string) => Promise<void> = async () => {}) {}
  begin(task: AgentTask) {
    const proposal = (text: string): Proposal => ({ files: { 'train.py': text }, description: text.trim(), rationale: '', followUps: [] })
    return {
      propose: async () => {
        await this.delay(task.unit.id)
        this.proposals.push(task.unit.id)
        return proposal(task.unit.hypothesis?.title ?? `LR = ${task.unit.id.length}\n`)
      },
      repair: async (f: Failure) => { this.repairs.push(f); return proposal('LR = 2\n') },
      usage: () => emptyUsage(this.label),
    }
  }
}

/** The measuring function: a train.py with CRASH in it crashes; any other scores by its length. */
function measurer() {
  const runs: string[] = []
  const measure = async (o: MeasureOptions): Promise<Measurement> => {
    const source = await readFile(join(o.runDir, 'train.py'), 'utf8')
    runs.push(source)
    if (source.includes('CRASH')) return { status: 'crash', metrics: null, error: 'exit code 1', logTail: 'Traceback: CRASH', runSeconds: 1, trainSeconds: 1, startupSeconds: 1, evaluation: null }
    const val = 1 + source.length / 100
    const metrics = { val_bpb: val, training_seconds: 2, total_seconds: 3, peak_vram_mb: 0, mfu_percent: 0, total_tokens_M: 0.1, num_steps: 10, num_params_M: 1, depth: 2 }
    return { status: 'ok', metrics, error: null, logTail: '', runSeconds: 2, trainSeconds: 2, startupSeconds: 1, evaluation: null }
  }
  return { runs, measure }
}

const quietUi: ProgressSink = { log: () => {}, start: () => {}, progress: () => {}, stop: () => {} }

/** A source that hands out the given units in order, then ends; records what it was told. */
class ListSource implements UnitSource {
  released: string[] = []
  readied: string[] = []
  readonly cancels = new Map<string, AbortController>()
  constructor(private readonly units: WorkUnit[], private readonly notReady: Set<string> = new Set()) {}
  async next() { return this.units.shift() ?? null }
  async ready(u: WorkUnit) {
    if (this.notReady.has(u.campaign)) throw new Error(`no data for ${u.campaign}`)
    this.readied.push(u.id)
    return { cacheDir: '/nowhere/cache', dataDir: '/nowhere/data' }
  }
  cancelled(u: WorkUnit) {
    if (!this.cancels.has(u.id)) this.cancels.set(u.id, new AbortController())
    return this.cancels.get(u.id)!.signal
  }
  release(u: WorkUnit) { this.released.push(u.id) }
}

class ListSink implements ResultSink {
  reports: Report[] = []
  failures: { unitId: string; error: string }[] = []
  async record(_p: Prepared, report: Report) { this.reports.push(report) }
  failed(u: WorkUnit, err: unknown) { this.failures.push({ unitId: u.id, error: (err as Error).message }) }
}

async function run(t: Test, o: { units: WorkUnit[]; agent?: Agent; sink?: ResultSink; source?: ListSource; cap?: number; signal?: AbortSignal; check?: ExperimentContext['check']; idle?: IdleBackoff; roomOnDisk?: (runsSoFar: number, waiting?: (waiting: boolean) => void) => Promise<void>; park?: ExperimentContext['park'] }) {
  const source = o.source ?? new ListSource(o.units)
  const sink = o.sink ?? new ListSink()
  const m = measurer()
  const workspaces = new Workspaces()
  const agent = o.agent ?? new ScriptedAgent()
  const duty = new DutyCycle()
  const gauge = new DepthGauge({ cap: o.cap ?? 1, budgetSeconds: () => 2 })
  const trainerDir = t.testdir({ 'prepare.py': '# locked\n' })
  const ctx: ExperimentContext = {
    agent, python: '/no/python', trainerDir, program: 'research', sandbox: null, runDir: join(trainerDir, 'run'),
    log: () => {}, onTrained: (seconds, budget) => duty.trained(seconds, budget), dutyCycle: () => duty.ratio(), measure: m.measure,
    roomOnDisk: o.roomOnDisk && ((_signal, waiting) => o.roomOnDisk!(m.runs.length, waiting)),
    park: o.park,
    check: o.check ?? (async files => (files['train.py'].includes('import os') ? { ok: false, violations: [{ file: 'train.py', line: 1, message: 'import os is not allowed' }] } : { ok: true, violations: [] })),
  }
  await runExperimentLoop({ source, sink, ctx, workspaces, depth: new LaneDepth(gauge, () => {}), signal: o.signal ?? new AbortController().signal, ui: quietUi, lane: '', idle: o.idle })
  return { source, sink: sink as ListSink, runs: m.runs, workspaces, agent, gauge }
}

const titled = (id: string, title: string): WorkUnit => ({ ...unit(id), hypothesis: { id: `h-${id}`, title, body: '' } })

t.test('every unit the source gives is prepared by the agent, trained once and reported to the sink', async t => {
  const r = await run(t, { units: [unit('a'), unit('bb'), unit('ccc', 'baseline')] })
  t.same(r.sink.reports.map(x => [x.unitId, x.status]), [['a', 'ok'], ['bb', 'ok'], ['ccc', 'ok']])
  t.same((r.agent as ScriptedAgent).proposals, ['a', 'bb'], 'the agent edits explore units, not a baseline')
  t.same(r.runs, ['LR = 1\n', 'LR = 2\n', PARENT], 'each candidate was measured once, the baseline as the parent wrote it')
  t.same(r.sink.reports.map(x => x.leaseToken), ['lease-a', 'lease-bb', 'lease-ccc'], 'each report names its lease')
  t.same(r.source.released, ['a', 'bb', 'ccc'], 'each unit left the loop\'s hands')
  t.equal(r.workspaces.out, 0, 'every workspace went back to the pool')
})

t.test('each run waits for room on the disk first (loop/lane.ts untilRoomOnDisk), a repaired one too', async t => {
  const looked: number[] = []
  const r = await run(t, { units: [titled('a', 'CRASH = 1\n'), unit('bb')], roomOnDisk: async runsSoFar => { looked.push(runsSoFar) } })
  t.same(r.runs, ['CRASH = 1\n', 'LR = 2\n', 'LR = 2\n'])
  t.same(looked, [0, 1, 2], 'once before each of the three runs, before it was measured')
})

t.test('a crashed run goes back to the agent, and the repaired candidate is what gets reported', async t => {
  const r = await run(t, { units: [titled('a', 'CRASH = 1\n')] })
  const agent = r.agent as ScriptedAgent
  t.equal(agent.repairs.length, 1)
  t.match(agent.repairs[0], { kind: 'crash', logTail: /CRASH/, attempt: 1 })
  t.same(r.runs, ['CRASH = 1\n', 'LR = 2\n'])
  t.match(r.sink.reports[0], { status: 'ok', source: { 'train.py': 'LR = 2\n' }, agentUsage: { attempts: 2 } })
})

t.test('a candidate the safety check refuses is repaired before it is ever measured', async t => {
  const r = await run(t, { units: [titled('a', 'import os\n')] })
  t.match((r.agent as ScriptedAgent).repairs, [{ kind: 'unsafe', error: /import os/ }])
  t.same(r.runs, ['LR = 2\n'], 'only the repaired candidate ran')
})

t.test('a candidate whose agent changed nothing is not trained: reported with no metrics, and the loop carries on', async t => {
  const r = await run(t, { units: [titled('a', PARENT), unit('bb')] })
  t.same(r.runs, ['LR = 2\n'], 'only the changed candidate ran')
  t.match(r.sink.reports, [{ unitId: 'a', status: 'ok', metrics: null, agentNotes: /the agent changed nothing/ }, { unitId: 'bb', status: 'ok' }])
  t.equal(r.sink.reports[0].source['train.py'], PARENT)
})

t.test('a researcher with nothing to train on a parent is held back, longer each time, until a candidate trains', async t => {
  const lines: string[] = []
  const idle = new IdleBackoff({ log: line => lines.push(line), firstMs: 5, maxMs: 15 })
  const other = { ...titled('e', PARENT), parentCommit: 'q'.repeat(40) }
  const r = await run(t, { units: [titled('a', PARENT), titled('b', PARENT), titled('c', PARENT), titled('d', PARENT), unit('v', 'verify'), other, unit('ff'), titled('g', PARENT)], idle })
  t.same(r.sink.reports.map(x => x.unitId), ['a', 'b', 'c', 'd', 'v', 'e', 'ff', 'g'], 'every unit is still reported')
  t.same(lines.map(l => /^(\w+): .* the last (\d+) time\(s\); the researcher starts in ([\d.]+)s$/.exec(l)?.slice(1)), [
    ['b', '1', '0.0'], ['c', '2', '0.0'], ['d', '3', '0.0'],
  ], 'b, c and d wait (5, 10, then 15 ms: the cap); the verification does not, nor e (another parent), nor g (after ff trained)')
  t.equal(idle.delayMs(titled('h', PARENT)), 5, 'g gave nothing again: the next waits from the start')
})

t.test('a candidate that stays unsafe is reported as refused and never measured', async t => {
  const refuseAll: ExperimentContext['check'] = async () => ({ ok: false, violations: [{ file: 'train.py', line: 3, message: 'eval is not allowed' }] })
  const r = await run(t, { units: [unit('a')], check: refuseAll })
  t.same(r.runs, [])
  t.match(r.sink.reports, [{ unitId: 'a', status: 'rejected-unsafe', agentNotes: /eval is not allowed/ }])
})

t.test('a unit whose data cannot be had goes to the sink as a failure, and the loop carries on', async t => {
  const other = { ...unit('b'), campaign: 'other' }
  const r = await run(t, { units: [other, unit('a')], source: new ListSource([other, unit('a')], new Set(['other'])) })
  t.same(r.sink.failures, [{ unitId: 'b', error: 'no data for other' }])
  t.same(r.sink.reports.map(x => x.unitId), ['a'])
  t.same((r.agent as ScriptedAgent).proposals, ['a'], 'the agent never saw the unit without data')
  t.same(r.source.released.sort(), ['a', 'b'])
})

t.test('a unit cancelled while its agent works is never trained', async t => {
  const source = new ListSource([unit('a'), unit('bb')])
  const agent = new ScriptedAgent(async id => { if (id === 'a') source.cancels.get('a')?.abort('the coordinator cancelled this unit') })
  const r = await run(t, { units: [], source, agent })
  t.same(r.sink.reports.map(x => x.unitId), ['bb'])
  t.same(r.runs, ['LR = 2\n'], 'only the other unit ran')
  t.same(r.source.released.sort(), ['a', 'bb'])
  t.equal(r.workspaces.out, 0)
})

t.test('a sink that asks to stop ends the loop; a unit still being prepared is not trained', async t => {
  const stop = new AbortController()
  const sink = new ListSink()
  const record = sink.record.bind(sink)
  sink.record = async (p, report) => { await record(p, report); stop.abort('done') }
  const r = await run(t, { units: [unit('a'), unit('bb'), unit('ccc')], sink, cap: 2, signal: stop.signal })
  t.same(r.sink.reports.map(x => x.unitId), ['a'])
  t.equal(r.runs.length, 1, 'the spare unit, prepared meanwhile, did not train')
})

t.test('what the sink hands back before training is what trains (solo: a candidate carried over to a new best)', async t => {
  const sink = new ListSink()
  Object.assign(sink, { beforeTraining: async (p: Prepared) => ({ ...p, files: { 'train.py': 'LR = 9\n' } }) })
  const r = await run(t, { units: [unit('a')], sink })
  t.same(r.runs, ['LR = 9\n'])
  t.match(r.sink.reports[0].source, { 'train.py': 'LR = 9\n' })
})

t.test('the agent\'s time and each run\'s length reach the depth gauge; a baseline does not time the agent', async t => {
  const baselineOnly = await run(t, { units: [unit('a', 'baseline')], cap: 4 })
  t.match(baselineOnly.gauge.describe(), /slowest recent agent not measured yet, training 2s/)
  const explored = await run(t, { units: [unit('a')], cap: 4 })
  t.match(explored.gauge.describe(), /slowest recent agent \d+s, training 2s/)
})

t.test('held units: a unit sent again under a new lease carries on under it, and a cancel reaches its signal', async t => {
  const held = new HeldUnits(new DutyCycle())
  const stop = new AbortController()
  const waiting = held.next(stop.signal)
  held.arrived(unit('a'))
  t.equal((await waiting)?.id, 'a', 'a waiting loop gets the unit as it arrives')
  held.arrived({ ...unit('a'), leaseToken: 'renewed' })
  t.same(held.leases(), [{ unitId: 'a', leaseToken: 'renewed', progress: null }])
  held.cancel('a', 'gone')
  t.equal(held.cancelled('a')?.reason, 'gone')
  held.release('a')
  t.same(held.leases(), [])
  const never = held.next(stop.signal)
  stop.abort()
  t.equal(await never, null, 'a stop ends the wait')
})

t.test('held units: while a run waits for room on the disk, its unit and the queued ones are left out of the leases, so they run out', async t => {
  const held = new HeldUnits(new DutyCycle())
  const stop = new AbortController()
  for (const id of ['a', 'b', 'c']) held.arrived(unit(id))
  const a = await held.next(stop.signal)
  const b = await held.next(stop.signal)
  held.progress('a', { step: 3, percent: 30, loss: 1, remainingSeconds: 2 })
  held.park(b!.id, true)
  t.same(held.leases().map(l => l.unitId), ['a'], 'a trains and keeps its lease; b waits for the disk, c waits in the queue behind it')
  held.park('gone', true)
  held.park(b!.id, false)
  t.same(held.leases().map(l => l.unitId), ['a', 'b', 'c'], 'room again: all three are named, and the next heartbeat reclaims or cancels them')
  held.park(b!.id, true)
  held.release(b!.id)
  t.same(held.leases().map(l => l.unitId), ['a', 'c'], 'a unit that left the loop\'s hands is no longer parked')
  t.ok(a)
})

t.test('a run that waits for room on the disk parks its unit for the wait, and only then', async t => {
  const parked: string[] = []
  const r = await run(t, {
    units: [unit('a'), unit('bb')],
    roomOnDisk: async (runsSoFar, waiting) => {
      if (runsSoFar !== 1) return
      waiting?.(true)
      waiting?.(false)
    },
    park: (u, waiting) => parked.push(`${u.id} ${waiting}`),
  })
  t.same(r.runs, ['LR = 1\n', 'LR = 2\n'])
  t.same(parked, ['bb true', 'bb false'], 'bb waited, a did not')
})

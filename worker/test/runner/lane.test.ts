import { existsSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { findPython } from '@autoresearch-grid/trainer'
import { openMeasureLab } from '../fixtures/measure-lab.ts'
import { GpuLane } from '../../src/runner/lane.ts'
import { restartReason } from '../../src/runner/measure.ts'
import type { TrainerResult } from '../../src/runner/trainer.ts'

// The GPU lane (runner/lane.ts): one run trains or is evaluated at a time, in launch order; the
// next run starts up beside it — beside its training in `worker solo` ('training' overlap), only
// beside its evaluation in `worker join` ('evaluation'), where the next run may be a stranger's
// code, unless that run's ticket says it is the worker's own ('training', loop/start-up-overlap.ts).

const tick = () => new Promise(r => setTimeout(r, 10))

t.test('the GPU is taken in turns, in the order the runs were launched; two seats let two runs overlap', async t => {
  const lane = new GpuLane()
  const order: string[] = []
  const a = await lane.acquire()
  const bTicket = lane.ticket()
  const cTicket = lane.ticket()
  const c = cTicket.acquire().then(pass => { order.push('c'); return pass })
  await tick()
  a()
  await tick()
  t.same(order, [], 'c started up first, but b was launched first: c waits for b')
  const b = bTicket.acquire().then(pass => { order.push('b'); return pass })
  ;(await b)()
  ;(await c)()
  t.same(order, ['b', 'c'])
  t.notOk(lane.busy)
  const stop = new AbortController()
  const held = await lane.acquire()
  const waiting = lane.acquire(stop.signal)
  const after = lane.ticket()
  stop.abort(new Error('the run ended before its turn'))
  await t.rejects(waiting, /ended before its turn/)
  held()
  ;(await after.acquire())()
  t.notOk(lane.busy, 'an abandoned wait does not keep the GPU')
  const dropped = lane.ticket()
  const next = lane.acquire()
  dropped.leave()
  ;(await next)()
  t.pass('a run that ends before asking for its turn gives up its place')
  const s0 = lane.seat()
  const s1 = lane.seat()
  t.same([s0.index, s1.index], [0, 1])
  s0.free()
  t.equal(lane.seat().index, 0, 'a freed seat is taken again')
})

t.test("'training' overlap: a run starts at launch, beside one that trains; nothing is evicted", async t => {
  const lane = new GpuLane('training')
  const a = lane.ticket()
  await a.start()
  await a.acquire()
  const b = lane.ticket()
  await b.start()
  t.ok(b.running, 'b starts up while a holds the turn')
  t.notOk(b.besideAnother, 'and is not a guest: it is the worker\'s own code')
  t.equal(await lane.evictGuests(a), 0)
  t.notOk(b.evicted.aborted)
})

t.test("'evaluation' overlap: the next run starts only once every earlier run has trained", async t => {
  const lane = new GpuLane('evaluation')
  const a = lane.ticket()
  await a.start()
  const b = lane.ticket()
  let bStarted = false
  const bStart = b.start().then(() => { bStarted = true })
  const passA = await a.acquire()
  await tick()
  t.notOk(bStarted, 'b waits while a trains')
  a.trainingEnded()
  await bStart
  t.ok(b.besideAnother, 'b starts beside a\'s evaluation')
  const c = lane.ticket()
  let cStarted = false
  void c.start().then(() => { cStarted = true })
  await tick()
  t.notOk(cStarted, 'c waits for b, which has not trained yet')
  passA()
  const passB = await b.acquire()
  await tick()
  t.notOk(cStarted, 'b trains: c still waits')
  b.trainingEnded()
  await tick()
  t.ok(cStarted)
  passB()
  c.leave()
})

t.test("a ticket's own overlap: in a lane of strangers' code, the worker's own code starts beside training, and a stranger after it still waits", async t => {
  const lane = new GpuLane('evaluation')
  const a = lane.ticket()
  await a.start()
  const passA = await a.acquire()
  t.notOk(a.crowded, 'nothing runs beside a yet')
  const own = lane.ticket('training')
  t.equal(own.overlap, 'training')
  await own.start()
  t.ok(own.running, 'the own run starts up while a trains')
  t.ok(own.besideAnother, 'beside another run\'s turn in a lane that evicts: it may be evicted, and starts again if it is')
  t.ok(a.crowded, 'a is marked: a run started up beside its training')
  const stranger = lane.ticket()
  let strangerStarted = false
  const strangerStart = stranger.start().then(() => { strangerStarted = true })
  a.trainingEnded()
  await tick()
  t.notOk(strangerStarted, 'the stranger waits for every earlier run to train, the own run included')
  passA()
  const passOwn = await own.acquire()
  t.notOk(own.crowded, 'the stranger has not started: nothing runs beside own\'s training')
  own.trainingEnded()
  await strangerStart
  t.ok(strangerStarted, 'and starts beside its evaluation')
  passOwn()
  stranger.leave()
})

t.test('a run that takes the turn while a later run\'s process already runs is crowded; one evaluated beside a start-up is not', async t => {
  const lane = new GpuLane('evaluation')
  const a = lane.ticket('training')
  const b = lane.ticket('training')
  await a.start()
  await b.start()
  const passA = await a.acquire()
  t.ok(a.crowded, 'b started up before a got its turn, and still runs beside it')
  a.trainingEnded()
  passA()
  const c = lane.ticket('training')
  const passB = await b.acquire()
  t.notOk(b.crowded, 'nothing else runs when b gets its turn')
  b.trainingEnded()
  await c.start()
  t.notOk(b.crowded, 'c starts beside b\'s evaluation, not its training')
  passB()
  c.leave()
})

t.test('start-ups that share the GPU are marked, so one that fails for memory starts again alone', async t => {
  const lane = new GpuLane('training')
  const a = lane.ticket()
  await a.start()
  t.notOk(a.startupCrowded, 'a starts up alone')
  const b = lane.ticket()
  await b.start()
  t.ok(a.startupCrowded, 'b started up while a still started up (neither holds the turn yet)')
  t.ok(b.startupCrowded, 'and b shares the GPU with a')
  const passA = await a.acquire()
  a.processEnded()
  a.trainingEnded()
  passA()
  const passB = await b.acquire()
  b.processEnded()
  b.trainingEnded()
  passB()
  const c = lane.ticket()
  await c.start()
  t.notOk(c.startupCrowded, 'no other process runs when c starts up')
  const d = lane.ticket()
  const passC = await c.acquire()
  await d.start()
  t.ok(d.startupCrowded, 'd starts up beside c\'s training')
  t.ok(c.crowded, 'and c is crowded (its training had a start-up beside it)')
  passC()
  d.leave()

  const failed: TrainerResult = {
    exitCode: 1, signal: null, summary: null, error: 'train.py exited with code 1: torch.OutOfMemoryError: CUDA out of memory', logTail: '', runSeconds: 24, timedOut: false, aborted: false, clock: null,
  }
  t.match(restartReason({ startedBeside: true, evicted: false }, failed), /start-up failed beside another run: train.py exited with code 1: torch.OutOfMemoryError/, 'a start-up that failed beside another run starts again alone')
  t.equal(restartReason({ startedBeside: false, evicted: false }, failed), null, 'one that failed alone is the run\'s own crash')
})

t.test('an evaluation that needs the GPU to itself evicts the runs started beside it, and nothing starts until it is done', async t => {
  const lane = new GpuLane('evaluation')
  const a = lane.ticket()
  await a.start()
  const passA = await a.acquire()
  a.trainingEnded()
  const b = lane.ticket()
  await b.start()
  const killed: string[] = []
  b.evicted.addEventListener('abort', () => setTimeout(() => { killed.push('b'); b.processEnded() }, 20))
  const evicting = lane.evictGuests(a)
  t.ok(b.evicted.aborted, 'b is told to stop')
  t.equal(await evicting, 1, 'and the evaluation waits for its process to be gone')
  t.same(killed, ['b'])
  b.leave()
  const again = lane.ticket()
  let started = false
  const starting = again.start(undefined, true).then(() => { started = true })
  await tick()
  t.notOk(started, 'the evicted run starts again only once the evaluation is over')
  passA()
  await starting
  t.ok(started)
  t.notOk(again.besideAnother)
  again.leave()
})

const python = await findPython().catch(() => null)
t.test('overlap on the real trainer', { skip: python ? false : 'needs a Python with torch' }, async t => {
  if (!python) return
  const scratch = t.testdir()
  const lab = await openMeasureLab(python.path, scratch)
  if (lab.problem !== null) return t.fail(`no sandbox here (npm test installs bubblewrap): ${lab.problem}`)
  const { measure, train } = lab
  const edit = (source: string, anchor: string, replacement: string) => {
    t.ok(source.includes(anchor), `train.py still has ${JSON.stringify(anchor)}`)
    return source.replace(anchor, replacement)
  }
  // Wall-clock stamps from inside the runs: when each process started, and when its training ended.
  const stamped = edit(edit(train, '\ndef main():\n', '\nimport time as _stamp\nprint("LAUNCHED", _stamp.time(), flush=True)\n\n\ndef main():\n'),
    '    print("---")\n', '    print("TRAINED", _stamp.time(), flush=True)\n    print("---")\n')
  const stamp = (log: string, what: string) => Number(new RegExp(`^${what} ([\\d.]+)$`, 'm').exec(log)?.[1] ?? Number.NaN)

  t.test('an evaluation that fails while a run starts up beside it is redone alone; the evicted run starts again', async t => {
    const lane = new GpuLane('evaluation')
    // Its model fails in the evaluator's model server (not in training): the evaluation fails.
    const failing = edit(stamped, '    """The model for a config; evaluate.py calls this (then loads the saved weights) to score it."""\n',
      '    """The model for a config; evaluate.py calls this (then loads the saved weights) to score it."""\n    if __name__ != "__main__":\n        raise MemoryError("CUDA out of memory (a test)")\n')
    // a is launched first (its turn has begun), so b is the one beside a's evaluation.
    let aGoes: () => void = () => {}
    const aHasTurn = new Promise<void>(resolve => { aGoes = resolve })
    const one = measure('evict-a', failing, { lane, onTraining: on => { if (on) aGoes() } })
    await aHasTurn
    let restaged = 0
    const [a, b] = await Promise.all([one, measure('evict-b', stamped, { lane, restage: async () => { restaged++ } })])
    t.equal(a.status, 'crash', 'a fails alone too: its own fault')
    t.match(a.logTail, /the evaluation failed while 1 run\(s\) started up beside it, and was redone with the GPU to itself/)
    t.match(a.error, /out of memory \(a test\)/)
    t.equal(b.status, 'ok', b.error ?? '')
    t.match(b.logTail, /started again with the GPU to itself: the run before it needed the GPU/)
    t.equal(b.logTail.match(/^LAUNCHED /gm)?.length, 1, 'the log is the second start\'s')
    t.equal(restaged, 1, 'its run folder was staged again before the second start')
  })
  // Handshakes through the run folders (each run's folder is writable from inside its sandbox): a
  // run that must wait for another to have started up writes nothing on a timer but polls a file.
  const waitFor = async (file: string) => { while (!existsSync(file)) await new Promise(r => setTimeout(r, 20)) }
  // (Only as a training run: the evaluator imports train.py too, with the run folder read-only.)
  const announces = edit(stamped, '\ndef main():\n', '\nif __name__ == "__main__":\n    open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "launched"), "w").close()\n\n\ndef main():\n')
  /** Its training ends only once `sign` is in its run folder (10 s at most), and says whether it saw it; `then`: Python run after that. */
  const waitsAtTheEnd = (then = '') => edit(stamped, '    print("TRAINED", _stamp.time(), flush=True)\n',
    '    _here = os.path.dirname(os.path.abspath(__file__))\n    _until = time.time() + 10\n' +
    '    while not os.path.exists(os.path.join(_here, "sign")) and time.time() < _until:\n        time.sleep(0.02)\n' +
    '    print("SAW_SIGN", os.path.exists(os.path.join(_here, "sign")), flush=True)\n' + then +
    '    print("TRAINED", _stamp.time(), flush=True)\n')
  /**
   * a holds the turn: b (the worker's own code) is launched, then c (a stranger's); a's training
   * ends once b's process runs. `turns`: each run's training starting and ending, in order.
   */
  const threeRuns = async (name: string, aSource: string, aExtra: Parameters<typeof measure>[2] = {}) => {
    const lane = new GpuLane('evaluation')
    const turns: string[] = []
    const onTraining = (run: string) => (on: boolean) => { turns.push(`${run} ${on ? 'go' : 'done'}`) }
    let aGoes: () => void = () => {}
    const aHasTurn = new Promise<void>(resolve => { aGoes = resolve })
    const one = measure(`${name}-a`, aSource, { lane, onTraining: on => { onTraining('a')(on); if (on) aGoes() }, ...aExtra })
    await aHasTurn
    const two = measure(`${name}-b`, announces, { lane, overlap: 'training', restage: async () => {}, onTraining: onTraining('b') })
    await waitFor(join(scratch, `${name}-b`, 'launched'))
    // c is launched after b (its ticket is later in line), while a still trains.
    const three = measure(`${name}-c`, stamped, { lane, onTraining: onTraining('c') })
    await writeFile(join(scratch, `${name}-a`, 'sign'), '')
    return [...await Promise.all([one, two, three]), turns] as const
  }

  // Also the lane's plain promises on real processes (a test each, two runs each, until session 13):
  // a second run starts up while the first holds the turn, the turns never overlap, and a stranger's
  // code is launched only once the timed runs before it have trained.
  t.test("the worker's own code starts up beside a stranger's timed run; a stranger's code after it waits until both have trained", async t => {
    const [a, b, c, turns] = await threeRuns('own', waitsAtTheEnd())
    for (const r of [a, b, c]) t.equal(r.status, 'ok', r.error ?? '')
    t.match(a.logTail, /^SAW_SIGN True$/m, 'b\'s process ran while a was still training')
    t.same(turns, ['a go', 'a done', 'b go', 'b done', 'c go', 'c done'], 'the turns never overlap, in the order the runs were launched')
    const launched = stamp(c.logTail, 'LAUNCHED')
    t.ok(launched > stamp(a.logTail, 'TRAINED') && launched > stamp(b.logTail, 'TRAINED'), 'c launched only after a and b had trained')
    t.notMatch(`${a.logTail}${b.logTail}${c.logTail}`, /started again|ran again/, 'none had to start again')
  })

  t.test('a training that fails while the worker\'s own start-up runs beside it is run again alone, and the start-up starts again after it', async t => {
    // a's training fails (as if for want of memory) unless its run folder was staged again.
    const crashes = waitsAtTheEnd('    if not os.path.exists(os.path.join(_here, "again")):\n        raise MemoryError("CUDA out of memory (a test)")\n')
    let restaged = 0
    const [a, b, c] = await threeRuns('crowded', crashes, { restage: async () => { restaged++; await writeFile(join(scratch, 'crowded-a', 'again'), '') } })
    t.equal(a.status, 'ok', a.error ?? '')
    t.match(a.logTail, /its training failed while 1 run\(s\) started up beside it, and ran again with the GPU to itself: .*out of memory \(a test\)/s)
    t.equal(restaged, 1, 'its run folder was staged again before it trained again')
    t.equal(a.logTail.match(/^LAUNCHED /gm)?.length, 1, 'the log is the second training\'s')
    t.equal(b.status, 'ok', b.error ?? '')
    t.match(b.logTail, /started again with the GPU to itself: the run before it needed the GPU/)
    t.equal(c.status, 'ok', c.error ?? '')
  })
})

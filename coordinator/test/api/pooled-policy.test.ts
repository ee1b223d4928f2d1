import t from 'tap'
import type { Hardware } from '@autoresearch-grid/shared'
import { CPU, httpClient, joinWorkers, report, SEED_TRAIN_PY, startCoordinator, wsClient } from '../helpers.ts'

const edit = (from: string, to: string) => SEED_TRAIN_PY.replace(from, to)
const GPU: Hardware = { ...CPU, gpus: [{ name: 'NVIDIA GeForce RTX 4090', memoryMb: 24564 }], hardwareClass: 'rtx4090-24g' }

/**
 * The `pooled` policy in production (docs/RATCHET.md, issue 17): ann, ben and eve work on the
 * founding class (cpu, best at ~1.50), dee alone on an approved GPU class (best at ~2.00). ann's
 * claim is 5σ better. Its verifications carry no class: they are drawn among the approved classes'
 * workers, so dee verifies it too, against the GPU class's own parent, and the verdict pools both
 * classes' runs. (eve only makes cpu a class that may explore; she is banned before the draw so
 * that it is between ben and dee, one each.) `parallel` pools the same way.
 */
for (const policy of ['pooled', 'parallel'] as const)
t.test(`a ${policy} campaign verifies a candidate on another approved class and counts that run against its own parent`, async t => {
  const c = await startCoordinator()
  t.teardown(c.close)
  await c.campaign('demo', { baselineRuns: 2, priorSigma: 0.01, policy })
  const admin = httpClient(c.url, c.adminToken())
  const [a, b, e] = await joinWorkers(c, ['ann', 'ben', 'eve'])
  const gpu = wsClient(c.url, c.workerToken('dee'))
  const { workerId: dee } = await gpu.api.worker.hello.mutate({ name: 'dee', hardware: GPU, fingerprints: {}, version: 't' })
  const deeUnits: { kind: string; id: string; leaseToken: string; source: Record<string, string> }[] = []
  let wake: (() => void) | null = null
  const sub = gpu.api.worker.assignments.subscribe({ workerId: dee }, { onData: ev => { if (ev.type === 'unit') { deeUnits.push(ev.unit); wake?.() } } })
  const deeNext = async () => { while (!deeUnits.length) await new Promise<void>(r => { wake = r }); return deeUnits.shift()! }
  t.teardown(() => { sub.unsubscribe(); gpu.close(); [a, b, e].forEach(w => w.close()) })

  const [ua, ub] = [await a.next(), await b.next()]
  await a.api.worker.report.mutate({ workerId: a.workerId, report: report(ua, 1.500) }) // the founding class: cpu
  await b.api.worker.report.mutate({ workerId: b.workerId, report: report(ub, 1.502) })
  await admin.admin.approveClass.mutate({ campaign: 'demo', hardwareClass: GPU.hardwareClass })
  for (const value of [2.0, 2.002]) {
    const u = await deeNext()
    t.equal(u.kind, 'baseline')
    await gpu.api.worker.report.mutate({ workerId: dee, report: report(u, value) })
  }
  await e.next() // eve holds an exploration
  const candidate = await a.next()
  await admin.admin.banWorker.mutate({ workerId: e.workerId })
  const claim = await a.api.worker.report.mutate({ workerId: a.workerId, report: report(candidate, 1.45, edit('DEPTH = 4', 'DEPTH = 6')) })
  await b.api.worker.report.mutate({ workerId: b.workerId, report: report(await b.next(), 1.53, edit('MATRIX_LR = 0.02', 'MATRIX_LR = 0.01')) })
  const [vb, vd] = [await b.next(), await deeNext()]
  t.same([vb.kind, vd.kind], ['verify', 'verify'], 'one verification on each class')
  await b.api.worker.report.mutate({ workerId: b.workerId, report: report(vb, 1.452) })
  await gpu.api.worker.report.mutate({ workerId: dee, report: report(vd, 1.95) })
  const exp = (await a.api.dashboard.experiment.query({ id: claim.experimentId }))!
  // `parallel` counts each run at most 3σ from its parent's mean (wildSigmas): these 5σ runs count
  // as 3σ, and without one contributor the win is short of z, so it asks one more run first.
  if (policy === 'pooled') t.equal(exp.status, 'kept', exp.decision)
  else t.match(exp.decision, /does not yet hold without the runs of .*; 1 more run by another contributor/)
  t.match(exp.decision, /pooled with 1 run\(s\) on 1 other class/, 'the GPU run is part of the verdict')
})

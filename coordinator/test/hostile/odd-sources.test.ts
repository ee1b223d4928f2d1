import t from 'tap'
import { joinWorkers, report, SEED_TRAIN_PY, startCoordinator } from '../helpers.ts'

// A train.py that is not clean UTF-8 text (NUL and other binary bytes, a lone UTF-16 surrogate
// that JSON carries but UTF-8 cannot, CRLF line ends after a byte-order mark) is stored as git
// stores bytes, and handed to its verifier as stored: the verifier's report of it must match the
// candidate's source hash, or every honest verification would be refused ("must run the code it
// was given, unchanged") and the candidate stranded. Already handled; this is end-to-end coverage.

const ODD = [
  ['NUL and binary bytes', SEED_TRAIN_PY + '\u0000\u0001binary\u0000'],
  ['a lone surrogate', SEED_TRAIN_PY + '# \ud800 x\n'],
  ['a BOM and CRLF line ends', '\ufeff' + SEED_TRAIN_PY.replace(/\n/g, '\r\n') + 'X = 1\r\n'],
] as const

for (const [what, source] of ODD) {
  t.test(`a candidate whose train.py holds ${what} is verified by another contributor on the code as stored`, async t => {
    const c = await startCoordinator()
    t.teardown(c.close)
    await c.campaign('demo', { replications: 1, baselineRuns: 1 })
    const [mallory, ben] = await joinWorkers(c, ['mallory', 'ben'])
    t.teardown(() => [mallory, ben].forEach(w => w.close()))
    await mallory.api.worker.report.mutate({ workerId: mallory.workerId, report: report(await mallory.next(), 1.5) })
    const claim = await mallory.api.worker.report.mutate({ workerId: mallory.workerId, report: report(await mallory.next(), 1.45, source) })
    t.match(claim.decision, /^verify/)
    let v = await ben.next()
    while (v.kind !== 'verify') {
      await ben.api.worker.report.mutate({ workerId: ben.workerId, report: report(v, null) })
      v = await ben.next()
    }
    t.equal(v.source['train.py'], source.replace('\ud800', '\ufffd'), 'the verifier gets the bytes git stored (a lone surrogate as U+FFFD)')
    const verified = await ben.api.worker.report.mutate({ workerId: ben.workerId, report: report(v, 1.45) })
    t.match(verified.decision, /^measured/, 'its report of that code is accepted')
    const status = c.app.db.$client.prepare('select status from experiments where id = ?').get(claim.experimentId) as { status: string }
    t.equal(status.status, 'kept', 'and settles the candidate')
  })
}

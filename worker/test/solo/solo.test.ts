import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { execa } from 'execa'
import { simpleGit } from 'simple-git'
import { parseResultsTsv, RESULTS_TSV_HEADER } from '@autoresearch-grid/shared'
import { workerCli } from '../../../shared/test/support/cli.ts'

// Plain autoresearch as a user runs it: the real CLI, the real CPU trainer, a fresh folder.

t.test('worker solo makes a branch of improvements and a results.tsv with a baseline and the experiments', async t => {
  const dir = join(t.testdir({}), 'research')
  const r = await execa(process.execPath, [workerCli, 'solo', dir, '--tag', 'cpu1', '--budget', '3', '--profile', 'cpu-tiny', '--experiments', '2', '--vocab-size', '512', '--seed', '1'], { all: true, reject: false })
  t.equal(r.exitCode, 0, r.all)

  const tsv = readFileSync(join(dir, 'results.tsv'), 'utf8')
  t.equal(tsv.split('\n')[0], RESULTS_TSV_HEADER)
  const rows = parseResultsTsv(tsv)
  t.equal(rows.length, 3, 'a baseline and two experiments')
  t.match(rows[0], { status: 'keep', description: 'baseline' })
  t.ok((rows[0].valBpb ?? 0) > 0)
  for (const row of rows.slice(1)) {
    t.match(row.status, /^(keep|discard|crash)$/)
    t.match(row.description, /^[A-Z_]+ \S+ -> \S+ /, 'a heuristic change')
    t.match(row.commit, /^[0-9a-f]{7}$/)
  }

  const git = simpleGit(dir)
  t.equal((await git.raw('rev-parse', '--abbrev-ref', 'HEAD')).trim(), 'autoresearch/cpu1')
  const branch = (await git.raw('log', '--format=%h %s', 'autoresearch/cpu1')).trim().split('\n')
  const kept = rows.slice(1).filter(r => r.status === 'keep')
  t.equal(branch.length, 1 + kept.length, 'the branch holds the starting point and exactly the kept experiments')
  for (const k of kept) t.ok(branch.some(l => l.startsWith(k.commit)), `kept ${k.commit} is on the branch`)
  const tried = (await git.raw('for-each-ref', '--format=%(objectname:short=7)', 'refs/autoresearch/cpu1/tried/')).trim().split('\n').filter(Boolean)
  for (const d of rows.slice(1).filter(r => r.status !== 'keep')) t.ok(tried.includes(d.commit), `discarded ${d.commit} stays reachable`)
  t.equal((await git.raw('status', '--porcelain')).trim(), '', 'results.tsv and the state folder are not part of the repository')
  t.match(r.all, /2 experiments, \d kept, best val_bpb \d\.\d{6}/)
})

import t from 'tap'
import { execa } from 'execa'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { coordinatorCli as cli } from '../../../shared/test/support/cli.ts'

// A campaign made with `--replications 0` under the default policy (parallel) waited for ever: the
// sequential test asks other contributors for runs whatever that says, and in a campaign meant to
// be decided on single runs nobody came (RELIABILITY.md, session 16).
t.test('--replications 0 is refused under a sequential policy, with what to do instead', async t => {
  const dir = await mkdtemp(join(tmpdir(), 'arg-cli-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const create = (...args: string[]) => execa(process.execPath, [cli, '--data', join(dir, 'data'), 'campaign', 'create', ...args, '--profile', 'cpu-tiny', '--no-prepare'], { reject: false })
  const refused = await create('a', '--replications', '0')
  t.equal(refused.exitCode, 2, 'a usage error')
  t.match(refused.stderr, /--replications 0 .* --policy fixed only; under --policy parallel/)
  t.match(refused.stderr, /Add --policy fixed, or, for a campaign with one contributor, use --allow-self-verification/)
  t.match((await create('b', '--replications', '0', '--policy', 'sequential')).stderr, /under --policy sequential/)
  const listed = await execa(process.execPath, [cli, '--data', join(dir, 'data'), 'campaign', 'list'])
  t.notMatch(listed.stdout, /^(a|b)\t/m, 'nothing was created')

  const fixed = await create('c', '--replications', '0', '--policy', 'fixed')
  t.equal(fixed.exitCode, 0, fixed.stderr)
  t.match(fixed.stdout, /ratchet policy: fixed/)
  const more = await create('d', '--replications', '2')
  t.equal(more.exitCode, 0, `replications above 0 still set the fixed rule's part of a parallel campaign (simplifications): ${more.stderr}`)
  t.match(more.stdout, /ratchet policy: parallel/)
})

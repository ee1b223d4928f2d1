import t, { type Test } from 'tap'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { WorkUnit } from '@autoresearch-grid/shared'
import { ExternalAgent } from '../../src/agent/external.ts'
import { openWorkspace } from '../../src/workspace/git.ts'

// --agent-cmd: any CLI edits the workspace; only the editable files' text is taken.
const trainerDir = fileURLToPath(new URL('../../../trainer/', import.meta.url))
const SOURCE = 'MATRIX_LR = 0.04\nprint("train")\n'

const unit: WorkUnit = {
  id: 'u1', kind: 'explore', campaign: 'demo', profile: 'cpu-tiny', budgetSeconds: 3, leaseToken: 'l', leaseExpiresAt: 0, parentCommit: 'p'.repeat(40),
  source: { 'train.py': SOURCE }, editableFiles: ['train.py'], hypothesis: { id: 'h', title: 'raise the Muon learning rate', body: '' }, referenceDiff: null, triedOnParent: [],
}

async function setup(t: Test, script: string) {
  const root = t.testdir({ 'agent.sh': `set -e\n${script}\n` })
  const command = `sh ${join(root, 'agent.sh')}`
  const ws = await openWorkspace(join(root, 'ws'))
  await ws.startFrom(unit.parentCommit, unit.source, { unitId: unit.id })
  const agent = new ExternalAgent({ command, promptDir: join(root, 'prompts'), lockedDir: trainerDir, timeoutSeconds: 30 })
  return { root, ws, session: agent.begin({ unit, files: { ...unit.source }, program: '# the program', seed: 1, dir: ws.dir }) }
}

t.test('the command edits train.py; everything else it did is discarded', async t => {
  // Edits train.py, vandalizes the read-only prepare.py copy, leaves junk, commits, answers in JSON.
  const { ws, session } = await setup(t, [
    'grep -q "raise the Muon learning rate" "$AUTORESEARCH_PROMPT_FILE"',
    'test "$1" = "$AUTORESEARCH_PROMPT_FILE"',
    'sed -i "s/MATRIX_LR = 0.04/MATRIX_LR = 0.06/" train.py',
    'chmod u+w prepare.py; echo "x = 1" > prepare.py',
    'echo junk > junk.txt; git add -A; git -c user.name=a -c user.email=a@b commit -qm "agent commit"',
    `echo '{"description": "MATRIX_LR 0.04 -> 0.06", "rationale": "faster", "follow_ups": [{"title": "try 0.08"}]}' > "$AUTORESEARCH_RESULT_FILE"`,
  ].join('\n'))
  const p = await session.propose()
  t.same(p.files, { 'train.py': SOURCE.replace('0.04', '0.06') })
  t.equal(p.description, 'MATRIX_LR 0.04 -> 0.06')
  t.same(p.followUps, [{ title: 'try 0.08', body: '' }])
  t.notOk(existsSync(join(ws.dir, 'junk.txt')), 'junk removed')
  t.notOk(existsSync(join(ws.dir, 'prepare.py')), 'the locked copy removed')
  t.equal(readFileSync(join(ws.dir, 'train.py'), 'utf8'), SOURCE, 'the workspace is back at its commit')
  t.equal(await ws.diff(), '', 'and its history too')
})

t.test('a failing command is an agent error with the end of its output', async t => {
  const { session } = await setup(t, 'echo "model overloaded" >&2; exit 3')
  await t.rejects(session.propose(), /the agent command failed \(exit code 3\): model overloaded/)
})

t.test('a repair run sees the failure in its prompt', async t => {
  const { session } = await setup(t, 'if grep -q "boom" "$AUTORESEARCH_PROMPT_FILE"; then sed -i "s/0.07/0.05/" train.py; else sed -i "s/0.04/0.07/" train.py; fi')
  t.match((await session.propose()).files['train.py'], /MATRIX_LR = 0\.07/)
  const repaired = await session.repair({ kind: 'crash', error: 'exit 1', logTail: 'RuntimeError: boom', attempt: 1 })
  t.match(repaired?.files['train.py'], /MATRIX_LR = 0\.05/, 'the repair saw the error and started from the failed candidate')
})

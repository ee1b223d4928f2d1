import t from 'tap'
import { chooseAgent } from '../../src/agent/choose.ts'

const base = { stateDir: '/tmp/state', trainerDir: '/tmp/trainer' }

t.test('--agent-cmd wins, then Claude when ANTHROPIC_API_KEY is set, else the heuristic', async t => {
  t.equal(chooseAgent({ ...base, env: { ANTHROPIC_API_KEY: 'sk' }, agentCmd: 'claude -p' }).label, 'external:claude')
  t.equal(chooseAgent({ ...base, env: { ANTHROPIC_API_KEY: 'sk', ANTHROPIC_MODEL: 'claude-opus-5-5' } }).label, 'claude:claude-opus-5-5')
  t.equal(chooseAgent({ ...base, env: { ANTHROPIC_API_KEY: 'sk' } }).label, 'claude:claude-sonnet-5-5')
  t.equal(chooseAgent({ ...base, env: { ANTHROPIC_API_KEY: '  ' } }).label, 'heuristic')
  t.equal(chooseAgent({ ...base, env: {} }).label, 'heuristic')
})
